/* otlp_scan.c - zero-allocation walker and validator for encoded OTLP trace requests. */
#include "otlp_scan.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* ---- shared parsing helpers ---------------------------------------------------------------
 *
 * A pctx walks the direct fields of one message. Every helper returns 0 or -1; on -1 the error
 * has been written to err with the absolute byte offset (counted from `origin`). */

typedef struct pctx {
    const uint8_t *msg;
    size_t len;
    size_t pos;
    const uint8_t *origin;
    const char *what; /* message name for errors: "Span", "KeyValue", ... */
    char *err;
    size_t errlen;
} pctx;

static void pc_init(pctx *c, const uint8_t *msg, size_t len, const uint8_t *origin,
                    const char *what, char *err, size_t errlen)
{
    c->msg = msg;
    c->len = len;
    c->pos = 0;
    c->origin = origin ? origin : msg;
    c->what = what;
    c->err = err;
    c->errlen = errlen;
}

static size_t pc_off(const pctx *c, size_t pos)
{
    return (size_t)(c->msg - c->origin) + pos;
}

static int pc_fail(pctx *c, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int pc_fail(pctx *c, size_t pos, const char *fmt, ...)
{
    if (c->err && c->errlen) {
        char what[96];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        snprintf(c->err, c->errlen, "%s: %s at byte %zu", c->what, what, pc_off(c, pos));
    }
    return -1;
}

/* Read the next tag. Returns 1 with *f and *wt set, 0 at the end of the message, -1 on error. */
static int pc_next(pctx *c, uint32_t *f, int *wt, size_t *tagpos)
{
    if (c->pos >= c->len) {
        return 0;
    }
    *tagpos = c->pos;
    *f = 0; /* set on every path (the inline reader leaves them alone on error) */
    *wt = 0;
    int rc = rt_pb_read_tag(c->msg, c->len, &c->pos, f, wt);
    if (rc != 0) {
        return pc_fail(c, *tagpos, "bad tag (%s)", rt_pb_strerror(rc));
    }
    return 1;
}

static int pc_wrong(pctx *c, size_t tagpos, uint32_t f, const char *name, int wt, int want)
{
    return pc_fail(c, tagpos, "field %s (%u): wrong wire type %d (want %d)", name, f, wt, want);
}

static int pc_len(pctx *c, size_t tagpos, uint32_t f, const char *name, int wt, rt_pb_slice *out)
{
    if (wt != RT_PB_WT_LEN) {
        return pc_wrong(c, tagpos, f, name, wt, RT_PB_WT_LEN);
    }
    size_t at = c->pos;
    int rc = rt_pb_read_len(c->msg, c->len, &c->pos, out);
    if (rc != 0) {
        return pc_fail(c, at, "field %s (%u): %s length", name, f, rt_pb_strerror(rc));
    }
    return 0;
}

static int pc_varint(pctx *c, size_t tagpos, uint32_t f, const char *name, int wt, uint64_t *out)
{
    if (wt != RT_PB_WT_VARINT) {
        return pc_wrong(c, tagpos, f, name, wt, RT_PB_WT_VARINT);
    }
    size_t at = c->pos;
    int rc = rt_pb_read_varint(c->msg, c->len, &c->pos, out);
    if (rc != 0) {
        return pc_fail(c, at, "field %s (%u): %s", name, f, rt_pb_strerror(rc));
    }
    return 0;
}

static int pc_fixed64(pctx *c, size_t tagpos, uint32_t f, const char *name, int wt, uint64_t *out)
{
    if (wt != RT_PB_WT_FIXED64) {
        return pc_wrong(c, tagpos, f, name, wt, RT_PB_WT_FIXED64);
    }
    size_t at = c->pos;
    if (rt_pb_read_fixed64(c->msg, c->len, &c->pos, out) != 0) {
        return pc_fail(c, at, "field %s (%u): truncated", name, f);
    }
    return 0;
}

static int pc_fixed32(pctx *c, size_t tagpos, uint32_t f, const char *name, int wt, uint32_t *out)
{
    if (wt != RT_PB_WT_FIXED32) {
        return pc_wrong(c, tagpos, f, name, wt, RT_PB_WT_FIXED32);
    }
    size_t at = c->pos;
    if (rt_pb_read_fixed32(c->msg, c->len, &c->pos, out) != 0) {
        return pc_fail(c, at, "field %s (%u): truncated", name, f);
    }
    return 0;
}

static int pc_skip(pctx *c, size_t tagpos, uint32_t f, int wt)
{
    int rc = rt_pb_skip(c->msg, c->len, &c->pos, wt);
    if (rc != 0) {
        return pc_fail(c, tagpos, "unknown field %u: %s", f, rt_pb_strerror(rc));
    }
    return 0;
}

/* Find the next occurrence of length-delimited `field` at or after c->pos, skipping (but
 * checking) everything else. Returns 1 with *out set, 0 at the end, -1 on error. */
static int pc_find(pctx *c, uint32_t field, const char *name, rt_pb_slice *out)
{
    uint32_t f;
    int wt, rc;
    size_t tp;
    /* A tight loop while the input is well-formed; the careful loop below re-reads the field
     * the tight one refused, to say what is wrong with it. */
    while (c->pos < c->len) {
        size_t p = c->pos;
        if (rt_pb_read_tag(c->msg, c->len, &p, &f, &wt) != 0) {
            break;
        }
        if (f == field) {
            if (wt != RT_PB_WT_LEN || rt_pb_read_len(c->msg, c->len, &p, out) != 0) {
                break;
            }
            c->pos = p;
            return 1;
        }
        if (rt_pb_skip(c->msg, c->len, &p, wt) != 0) {
            break;
        }
        c->pos = p;
    }
    while ((rc = pc_next(c, &f, &wt, &tp)) == 1) {
        if (f == field) {
            return pc_len(c, tp, f, name, wt, out) == 0 ? 1 : -1;
        }
        if (pc_skip(c, tp, f, wt) != 0) {
            return -1;
        }
    }
    return rc;
}

static const rt_pb_slice no_slice = {NULL, 0};

/* ---- Span and Status ------------------------------------------------------------------- */

/* Wire type of each Span field (index = field number; -1: unknown, skipped). */
static const int8_t span_wt[17] = {
    -1,
    RT_PB_WT_LEN,
    RT_PB_WT_LEN,
    RT_PB_WT_LEN,
    RT_PB_WT_LEN,
    RT_PB_WT_LEN,
    RT_PB_WT_VARINT,
    RT_PB_WT_FIXED64,
    RT_PB_WT_FIXED64,
    RT_PB_WT_LEN,
    RT_PB_WT_VARINT,
    RT_PB_WT_LEN,
    RT_PB_WT_VARINT,
    RT_PB_WT_LEN,
    RT_PB_WT_VARINT,
    RT_PB_WT_LEN,
    RT_PB_WT_FIXED32,
};

/* Status fields into *v (later occurrences override earlier ones); false on malformed input. */
static bool status_merge_fast(rt_pb_slice st, rt_otlp_span_view *v)
{
    size_t pos = 0;
    while (pos < st.len) {
        uint32_t f;
        int wt;
        uint64_t u;
        if (rt_pb_read_tag(st.p, st.len, &pos, &f, &wt) != 0) {
            return false;
        }
        if (f == 2) {
            if (wt != RT_PB_WT_LEN || rt_pb_read_len(st.p, st.len, &pos, &v->status_message) != 0) {
                return false;
            }
        } else if (f == 3) {
            if (wt != RT_PB_WT_VARINT || rt_pb_read_varint(st.p, st.len, &pos, &u) != 0) {
                return false;
            }
            v->status_code = (int32_t)u;
        } else if (rt_pb_skip(st.p, st.len, &pos, wt) != 0) {
            return false;
        }
    }
    return true;
}

/* The span parse (defined with the validator below, whose tables it shares in checked mode):
 * `check` also validates what rt_otlp_validate would inside the span; `ks` (may be NULL) indexes
 * its attributes into `kv` in the same walk. Returns 0, or -1 with err set. */
static int span_parse(const uint8_t *msg, size_t len, rt_otlp_span_view *v, const uint8_t *origin,
                      bool check, const rt_otlp_keyset *ks, rt_pb_slice *kv, char *err,
                      size_t errlen);
/* A Resource (`resource`) or InstrumentationScope checked as rt_otlp_validate checks it.
 * Returns 0, or -1 with err set. Defined with the validator. */
static int check_head(const uint8_t *origin, bool resource, rt_pb_slice s, char *err,
                      size_t errlen);

/* ---- the walker ------------------------------------------------------------------------ */

int rt_otlp_span_parse(const uint8_t *span, size_t len, rt_otlp_span_view *v, char *err,
                       size_t errlen)
{
    return span_parse(span, len, v, span, false, NULL, NULL, err, errlen);
}

/* The router's span walk: top-level tags only, trace_id kept. Returns 0 or -1 with err. */
static int span_ids_parse(const uint8_t *msg, size_t len, rt_otlp_span_view *v,
                          const uint8_t *origin, char *err, size_t errlen)
{
    v->span.p = msg;
    v->span.len = len;
    v->trace_id = no_slice;
    size_t pos = 0;
    while (pos < len) {
        size_t tagpos = pos;
        uint32_t f;
        int wt;
        if (rt_pb_read_tag(msg, len, &pos, &f, &wt) != 0) {
            snprintf(err, errlen, "Span: bad tag at byte %zu", (size_t)(msg + tagpos - origin));
            return -1;
        }
        if (f == 1) {
            if (wt != 2 || rt_pb_read_len(msg, len, &pos, &v->trace_id) != 0) {
                snprintf(err, errlen,
                         "Span: field trace_id (1): wire type %d or length bad at "
                         "byte %zu",
                         wt, (size_t)(msg + tagpos - origin));
                return -1;
            }
        } else if (rt_pb_skip(msg, len, &pos, wt) != 0) {
            snprintf(err, errlen, "Span: field %u: wire type %d or length bad at byte %zu", f, wt,
                     (size_t)(msg + tagpos - origin));
            return -1;
        }
    }
    return 0;
}

void rt_otlp_scan_init_ids(rt_otlp_scan *it, const uint8_t *buf, size_t len)
{
    rt_otlp_scan_init(it, buf, len);
    it->ids_only = 1;
}

int rt_otlp_check_structure(const uint8_t *pb, size_t len, size_t *span_count, char *err,
                            size_t errlen)
{
    rt_otlp_scan it;
    rt_otlp_span_view v;
    size_t n = 0;
    int rc;
    rt_otlp_scan_init_ids(&it, pb, len);
    while ((rc = rt_otlp_scan_next(&it, &v)) == 1) {
        n++;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s", it.err);
        return -1;
    }
    *span_count = n;
    return 0;
}

void rt_otlp_scan_init(rt_otlp_scan *it, const uint8_t *buf, size_t len)
{
    memset(it, 0, sizeof(*it));
    it->buf = buf;
    it->len = buf ? len : 0;
}

void rt_otlp_scan_init_checked(rt_otlp_scan *it, const uint8_t *buf, size_t len)
{
    rt_otlp_scan_init(it, buf, len);
    it->check = 1;
}

static int scan_fail(rt_otlp_scan *it, const char *where, const char *msg)
{
    snprintf(it->err, sizeof(it->err), "%s: %s", where, msg);
    it->failed = 1;
    return -1;
}

/* Pre-pass over a container (ResourceSpans or ScopeSpans, which share a layout: field 1 its
 * Resource / InstrumentationScope, field 2 the repeated children, field 3 schema_url). Finds
 * the (last) field 1 and schema_url so every span under the container is reported with them,
 * wherever in the message they sit. `msg` / `f1` / `f2` name the message and fields in errors. */
static int enter_container(rt_otlp_scan *it, rt_pb_slice body, const char *msg, const char *f1,
                           const char *f2, int *has, rt_pb_slice *head, rt_pb_slice *schema_url,
                           char *err, size_t errlen)
{
    bool resource = f1[0] == 'r'; /* "resource" or "scope" */
    /* A tight loop while the input is well-formed; on anything odd the careful loop below
     * walks the container again and says what is wrong. */
    size_t pos = 0;
    *has = 0;
    *head = no_slice;
    *schema_url = no_slice;
    while (pos < body.len) {
        uint32_t f;
        int wt;
        rt_pb_slice s;
        if (rt_pb_read_tag(body.p, body.len, &pos, &f, &wt) != 0) {
            break;
        }
        if (f >= 1 && f <= 3) {
            if (wt != RT_PB_WT_LEN || rt_pb_read_len(body.p, body.len, &pos, &s) != 0) {
                break;
            }
            if (f == 1) {
                *head = s;
                *has = 1;
                if (it->check && check_head(it->buf, resource, s, err, errlen) != 0) {
                    return -1;
                }
            } else if (f == 3) {
                *schema_url = s;
            }
        } else if (rt_pb_skip(body.p, body.len, &pos, wt) != 0) {
            break;
        }
    }
    if (pos >= body.len) {
        return 0;
    }
    pctx c;
    pc_init(&c, body.p, body.len, it->buf, msg, err, errlen);
    *has = 0;
    *head = no_slice;
    *schema_url = no_slice;
    uint32_t f;
    int wt, rc;
    size_t tp;
    rt_pb_slice s;
    while ((rc = pc_next(&c, &f, &wt, &tp)) == 1) {
        switch (f) {
        case 1:
            rc = pc_len(&c, tp, f, f1, wt, head);
            *has = 1;
            if (rc == 0 && it->check) { /* every occurrence, as the validator does */
                rc = check_head(it->buf, resource, *head, err, errlen);
            }
            break;
        case 2:
            rc = pc_len(&c, tp, f, f2, wt, &s);
            break;
        case 3:
            rc = pc_len(&c, tp, f, "schema_url", wt, schema_url);
            break;
        default:
            rc = pc_skip(&c, tp, f, wt);
            break;
        }
        if (rc != 0) {
            return -1;
        }
    }
    return rc;
}

static int enter_resource_spans(rt_otlp_scan *it, char *err, size_t errlen)
{
    rt_otlp_span_view *x = &it->ctx;
    return enter_container(it, it->rs, "ResourceSpans", "resource", "scope_spans", &x->has_resource,
                           &x->resource, &x->resource_schema_url, err, errlen);
}

static int enter_scope_spans(rt_otlp_scan *it, char *err, size_t errlen)
{
    rt_otlp_span_view *x = &it->ctx;
    return enter_container(it, it->ss, "ScopeSpans", "scope", "spans", &x->has_scope, &x->scope,
                           &x->scope_schema_url, err, errlen);
}

int rt_otlp_scan_next(rt_otlp_scan *it, rt_otlp_span_view *v)
{
    return rt_otlp_scan_next_keyed(it, v, NULL, NULL);
}

int rt_otlp_scan_next_keyed(rt_otlp_scan *it, rt_otlp_span_view *v, const rt_otlp_keyset *ks,
                            rt_pb_slice *kv)
{
    if (ks != NULL && ks->n == 0) {
        ks = NULL;
    }
    char err[RT_OTLP_ERR_MAX];
    char where[80];
    pctx c;
    rt_pb_slice s;
    int rc;

    if (it->failed) {
        return -1;
    }
    for (;;) {
        switch (it->state) {
        case 2: /* inside a ScopeSpans: next span */
            pc_init(&c, it->ss.p, it->ss.len, it->buf, "ScopeSpans", err, sizeof(err));
            c.pos = it->ss_pos;
            rc = pc_find(&c, 2, "spans", &s);
            it->ss_pos = c.pos;
            if (rc < 0) {
                goto fail_scope;
            }
            if (rc == 0) {
                it->state = 1;
                break;
            }
            *v = it->ctx;
            v->span_index = it->next_span++;
            if ((it->ids_only ? span_ids_parse(s.p, s.len, v, it->buf, err, sizeof(err))
                              : span_parse(s.p, s.len, v, it->buf, it->check, ks, kv, err,
                                           sizeof(err))) != 0) {
                snprintf(where, sizeof(where), "resource_spans[%zu].scope_spans[%zu].spans[%zu]",
                         it->ctx.resource_index, it->ctx.scope_index, v->span_index);
                return scan_fail(it, where, err);
            }
            return 1;
        case 1: /* inside a ResourceSpans: next ScopeSpans */
            pc_init(&c, it->rs.p, it->rs.len, it->buf, "ResourceSpans", err, sizeof(err));
            c.pos = it->rs_pos;
            rc = pc_find(&c, 2, "scope_spans", &it->ss);
            it->rs_pos = c.pos;
            if (rc < 0) {
                goto fail_resource;
            }
            if (rc == 0) {
                it->state = 0;
                break;
            }
            it->ctx.scope_index = it->next_scope++;
            it->ctx.scope_seq = it->next_scope_seq++;
            it->next_span = 0;
            it->ss_pos = 0;
            if (enter_scope_spans(it, err, sizeof(err)) != 0) {
                goto fail_scope;
            }
            it->state = 2;
            break;
        default: /* request level: next ResourceSpans */
            pc_init(&c, it->buf, it->len, it->buf, "ExportTraceServiceRequest", err, sizeof(err));
            c.pos = it->pos;
            rc = pc_find(&c, 1, "resource_spans", &it->rs);
            it->pos = c.pos;
            if (rc < 0) {
                return scan_fail(it, "request", err);
            }
            if (rc == 0) {
                return 0;
            }
            it->ctx.resource_index = it->next_resource++;
            it->next_scope = 0;
            it->rs_pos = 0;
            if (enter_resource_spans(it, err, sizeof(err)) != 0) {
                goto fail_resource;
            }
            it->state = 1;
            break;
        }
    }

fail_scope:
    snprintf(where, sizeof(where), "resource_spans[%zu].scope_spans[%zu]", it->ctx.resource_index,
             it->ctx.scope_index);
    return scan_fail(it, where, err);
fail_resource:
    snprintf(where, sizeof(where), "resource_spans[%zu]", it->ctx.resource_index);
    return scan_fail(it, where, err);
}

/* ---- values and the field / attribute iterators ------------------------------------------ */

/* Merge one encoded AnyValue into *out: each oneof member present replaces the current one,
 * so the last member on the wire wins and an empty occurrence changes nothing. */
static int value_merge(const uint8_t *any, size_t len, rt_otlp_value *out, const uint8_t *origin,
                       char *err, size_t errlen)
{
    pctx c;
    pc_init(&c, any, len, origin, "AnyValue", err, errlen);
    uint32_t f;
    int wt, rc;
    size_t tp;
    uint64_t u;
    while ((rc = pc_next(&c, &f, &wt, &tp)) == 1) {
        switch (f) {
        case 1:
            rc = pc_len(&c, tp, f, "string_value", wt, &out->s);
            out->type = RT_OTLP_VAL_STRING;
            break;
        case 2:
            rc = pc_varint(&c, tp, f, "bool_value", wt, &u);
            out->type = RT_OTLP_VAL_BOOL;
            out->b = u != 0;
            break;
        case 3:
            rc = pc_varint(&c, tp, f, "int_value", wt, &u);
            out->type = RT_OTLP_VAL_INT;
            out->i = (int64_t)u;
            break;
        case 4:
            rc = pc_fixed64(&c, tp, f, "double_value", wt, &u);
            out->type = RT_OTLP_VAL_DOUBLE;
            memcpy(&out->d, &u, sizeof(out->d));
            break;
        case 5:
            rc = pc_len(&c, tp, f, "array_value", wt, &out->s);
            out->type = RT_OTLP_VAL_ARRAY;
            break;
        case 6:
            rc = pc_len(&c, tp, f, "kvlist_value", wt, &out->s);
            out->type = RT_OTLP_VAL_KVLIST;
            break;
        case 7:
            rc = pc_len(&c, tp, f, "bytes_value", wt, &out->s);
            out->type = RT_OTLP_VAL_BYTES;
            break;
        default:
            rc = pc_skip(&c, tp, f, wt);
            break;
        }
        if (rc != 0) {
            return -1;
        }
    }
    return rc;
}

int rt_otlp_value_decode(const uint8_t *any, size_t len, rt_otlp_value *out, const uint8_t *origin,
                         char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    return value_merge(any, len, out, origin, err, errlen);
}

/* Decode a KeyValue: last key wins; repeated value messages merge. */
static int keyvalue_decode(const uint8_t *kv, size_t len, rt_otlp_attr *out, const uint8_t *origin,
                           char *err, size_t errlen)
{
    pctx c;
    pc_init(&c, kv, len, origin, "KeyValue", err, errlen);
    memset(out, 0, sizeof(*out));
    out->kv.p = kv;
    out->kv.len = len;
    uint32_t f;
    int wt, rc;
    size_t tp;
    rt_pb_slice s = {NULL, 0};
    while ((rc = pc_next(&c, &f, &wt, &tp)) == 1) {
        switch (f) {
        case 1:
            rc = pc_len(&c, tp, f, "key", wt, &out->key);
            break;
        case 2:
            rc = pc_len(&c, tp, f, "value", wt, &s);
            if (rc == 0) {
                rc = value_merge(s.p, s.len, &out->value, c.origin, err, errlen);
            }
            break;
        default:
            rc = pc_skip(&c, tp, f, wt);
            break;
        }
        if (rc != 0) {
            return -1;
        }
    }
    return rc;
}

void rt_otlp_field_iter_init(rt_otlp_field_iter *it, const uint8_t *msg, size_t len, uint32_t field)
{
    it->msg = msg;
    it->len = msg ? len : 0;
    it->pos = 0;
    it->field = field;
    it->origin = msg;
    it->failed = 0;
    it->err[0] = '\0';
}

int rt_otlp_field_next(rt_otlp_field_iter *it, rt_pb_slice *out)
{
    if (it->failed) {
        return -1;
    }
    pctx c;
    pc_init(&c, it->msg, it->len, it->origin, "message", it->err, sizeof(it->err));
    c.pos = it->pos;
    int rc = pc_find(&c, it->field, "repeated", out);
    it->pos = c.pos;
    if (rc < 0) {
        it->failed = 1;
    }
    return rc;
}

int rt_otlp_attr_next(rt_otlp_attr_iter *it, rt_otlp_attr *out)
{
    rt_pb_slice s;
    int rc = rt_otlp_field_next(it, &s);
    if (rc != 1) {
        return rc;
    }
    if (keyvalue_decode(s.p, s.len, out, it->origin, it->err, sizeof(it->err)) != 0) {
        it->failed = 1;
        return -1;
    }
    return 1;
}

int rt_otlp_array_next(rt_otlp_array_iter *it, rt_otlp_value *out)
{
    rt_pb_slice s;
    int rc = rt_otlp_field_next(it, &s);
    if (rc != 1) {
        return rc;
    }
    if (rt_otlp_value_decode(s.p, s.len, out, it->origin, it->err, sizeof(it->err)) != 0) {
        it->failed = 1;
        return -1;
    }
    return 1;
}

/* The layout SDKs write for nearly every KeyValue: the key (field 1), then the value (field 2),
 * each with a one-byte length, and nothing after. True with both parts when `kv` is exactly
 * that; anything else (longer lengths, another order, more fields) is for the general readers. */
static inline bool kv_canonical(rt_pb_slice kv, rt_pb_slice *key, rt_pb_slice *any)
{
    const uint8_t *p = kv.p;
    if (kv.len < 4 || p[0] != 0x0A || p[1] >= 0x80 || (size_t)p[1] + 4 > kv.len) {
        return false;
    }
    size_t kl = p[1];
    const uint8_t *q = p + 2 + kl;
    if (q[0] != 0x12 || q[1] >= 0x80 || kl + 4 + q[1] != kv.len) {
        return false;
    }
    key->p = p + 2;
    key->len = kl;
    any->p = q + 2;
    any->len = q[1];
    return true;
}

/* The key of an encoded KeyValue (last occurrence, as keyvalue_decode reads it); the value and
 * anything else are skipped by length. Returns 0, or -1 when malformed. */
static inline int kv_key(rt_pb_slice kv, rt_pb_slice *k)
{
    rt_pb_slice any;
    if (kv_canonical(kv, k, &any)) {
        return 0;
    }
    size_t kp = 0;
    k->p = NULL;
    k->len = 0;
    while (kp < kv.len) {
        uint32_t kf;
        int kwt;
        if (rt_pb_read_tag(kv.p, kv.len, &kp, &kf, &kwt) != 0) {
            return -1;
        }
        int rc = kf == 1 && kwt == RT_PB_WT_LEN ? rt_pb_read_len(kv.p, kv.len, &kp, k)
                                                : rt_pb_skip(kv.p, kv.len, &kp, kwt);
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

/* The next KeyValue of `field` in msg from *pos. Returns 1 with its bytes in *kv, 0 at the
 * end, -1 on malformed input. Other fields are skipped by length. */
static inline int next_kv(const uint8_t *msg, size_t len, size_t *pos, uint32_t field,
                          rt_pb_slice *kv)
{
    while (*pos < len) {
        uint32_t f;
        int wt;
        if (rt_pb_read_tag(msg, len, pos, &f, &wt) != 0) {
            return -1;
        }
        if (f != field) {
            if (rt_pb_skip(msg, len, pos, wt) != 0) {
                return -1;
            }
            continue;
        }
        if (wt != RT_PB_WT_LEN || rt_pb_read_len(msg, len, pos, kv) != 0) {
            return -1;
        }
        return 1;
    }
    return 0;
}

int rt_otlp_attr_find(const uint8_t *msg, size_t len, uint32_t field, const char *key,
                      size_t keylen, rt_otlp_attr *out)
{
    /* Walk the message's tags, and in each KeyValue of `field` only its key; decode the value
     * of the match alone. Bytes that are not the key being looked for are only skipped by their
     * lengths, so a malformed KeyValue elsewhere in the list goes unnoticed here (requests are
     * validated on receipt). */
    size_t pos = 0;
    rt_pb_slice kv, k;
    int rc;
    while ((rc = next_kv(msg, len, &pos, field, &kv)) == 1) {
        if (kv_key(kv, &k) != 0) {
            return -1;
        }
        if (k.len == keylen && (keylen == 0 || memcmp(k.p, key, keylen) == 0)) {
            char err[RT_OTLP_ERR_MAX];
            return keyvalue_decode(kv.p, kv.len, out, msg, err, sizeof err) == 0 ? 1 : -1;
        }
    }
    return rc;
}

/* The index of `key` in ks, or -1. */
static inline int keyset_find(const rt_otlp_keyset *ks, rt_pb_slice key)
{
    uint32_t cand = ks->by_len[key.len & 63];
    while (cand != 0) {
        unsigned i = (unsigned)__builtin_ctz(cand);
        cand &= cand - 1;
        if (ks->key[i].len == key.len &&
            (key.len == 0 || memcmp(ks->key[i].p, key.p, key.len) == 0)) {
            return (int)i; /* keys are distinct */
        }
    }
    return -1;
}

/* Record KeyValue `kv` (key `key`) for the key of `ks` it carries, if any and if that key has
 * no KeyValue yet (the first occurrence counts). True when it was recorded. */
static inline bool keyset_hit(const rt_otlp_keyset *ks, rt_pb_slice *out, rt_pb_slice key,
                              rt_pb_slice kv)
{
    int i = keyset_find(ks, key);
    if (i < 0 || out[i].p != NULL) {
        return false;
    }
    out[i] = kv;
    return true;
}

int rt_otlp_keyset_add(rt_otlp_keyset *ks, const uint8_t *key, size_t len)
{
    int i = keyset_find(ks, (rt_pb_slice){key, len});
    if (i >= 0) {
        return i;
    }
    if (ks->n == RT_OTLP_KEYSET_MAX) {
        return -1;
    }
    ks->key[ks->n] = (rt_pb_slice){key, len};
    ks->by_len[len & 63] |= 1u << ks->n;
    return (int)ks->n++;
}

int rt_otlp_attr_index(const uint8_t *msg, size_t len, uint32_t field, const rt_otlp_keyset *ks,
                       rt_pb_slice *kv)
{
    size_t pos = 0, found = 0;
    rt_pb_slice one, k;
    int rc = 0;
    for (size_t i = 0; i < ks->n; i++) {
        kv[i] = (rt_pb_slice){NULL, 0};
    }
    while (found < ks->n && (rc = next_kv(msg, len, &pos, field, &one)) == 1) {
        if (kv_key(one, &k) != 0) {
            return -1;
        }
        if (keyset_hit(ks, kv, k, one)) {
            found++;
        }
    }
    return rc < 0 ? -1 : (int)found;
}

/* The member tag of an AnyValue laid out the common way (one member; a string, bytes, array or
 * kvlist with a one-byte length, a bool or int varint, or a double, ending exactly at its end;
 * 0 for an empty AnyValue), or -1 for any other layout (the general walk reads those). */
static inline int canonical_member(rt_pb_slice a)
{
    if (a.len == 0) {
        return 0;
    }
    switch (a.p[0]) {
    case 0x0A: /* string_value */
    case 0x2A: /* array_value */
    case 0x32: /* kvlist_value */
    case 0x3A: /* bytes_value */
        return a.len >= 2 && a.p[1] < 0x80 && (size_t)a.p[1] + 2 == a.len ? a.p[0] : -1;
    case 0x21: /* double_value */
        return a.len == 9 ? a.p[0] : -1;
    case 0x10: /* bool_value */
    case 0x18: /* int_value */ {
        size_t pos = 1;
        uint64_t u;
        return rt_pb_read_varint(a.p, a.len, &pos, &u) == 0 && pos == a.len ? a.p[0] : -1;
    }
    default:
        return -1;
    }
}

/* An AnyValue in the layout canonical_member recognises, decoded without the general walk
 * (which gives the same result for these). False: some other layout. */
static inline bool value_canonical_decode(rt_pb_slice a, rt_otlp_value *out)
{
    int m = canonical_member(a);
    if (m < 0) {
        return false;
    }
    memset(out, 0, sizeof(*out));
    size_t pos = 1;
    uint64_t u = 0;
    switch (m) {
    case 0x0A:
    case 0x2A:
    case 0x32:
    case 0x3A:
        out->type = m == 0x0A   ? RT_OTLP_VAL_STRING
                    : m == 0x2A ? RT_OTLP_VAL_ARRAY
                    : m == 0x32 ? RT_OTLP_VAL_KVLIST
                                : RT_OTLP_VAL_BYTES;
        out->s = (rt_pb_slice){a.p + 2, a.p[1]};
        break;
    case 0x21:
        rt_pb_read_fixed64(a.p, a.len, &pos, &u);
        out->type = RT_OTLP_VAL_DOUBLE;
        memcpy(&out->d, &u, sizeof(out->d));
        break;
    case 0x10:
        rt_pb_read_varint(a.p, a.len, &pos, &u);
        out->type = RT_OTLP_VAL_BOOL;
        out->b = u != 0;
        break;
    case 0x18:
        rt_pb_read_varint(a.p, a.len, &pos, &u);
        out->type = RT_OTLP_VAL_INT;
        out->i = (int64_t)u;
        break;
    default: /* 0: empty, no member */
        break;
    }
    return true;
}

int rt_otlp_keyvalue_decode(const uint8_t *kv, size_t len, rt_otlp_attr *out)
{
    rt_pb_slice key, any;
    if (kv_canonical((rt_pb_slice){kv, len}, &key, &any) &&
        value_canonical_decode(any, &out->value)) {
        out->key = key;
        out->kv = (rt_pb_slice){kv, len};
        return 0;
    }
    char err[RT_OTLP_ERR_MAX];
    return keyvalue_decode(kv, len, out, kv, err, sizeof err);
}

/* ---- Event, Link, Resource, InstrumentationScope ----------------------------------------- */

int rt_otlp_event_parse(const uint8_t *msg, size_t len, rt_otlp_event_view *out,
                        const uint8_t *origin, char *err, size_t errlen)
{
    pctx c;
    pc_init(&c, msg, len, origin, "Span.Event", err, errlen);
    memset(out, 0, sizeof(*out));
    out->msg.p = msg;
    out->msg.len = len;
    uint32_t f;
    int wt, rc;
    size_t tp;
    uint64_t u;
    rt_pb_slice s;
    while ((rc = pc_next(&c, &f, &wt, &tp)) == 1) {
        switch (f) {
        case 1:
            rc = pc_fixed64(&c, tp, f, "time_unix_nano", wt, &out->time_ns);
            break;
        case 2:
            rc = pc_len(&c, tp, f, "name", wt, &out->name);
            break;
        case 3:
            rc = pc_len(&c, tp, f, "attributes", wt, &s);
            out->n_attributes++;
            break;
        case 4:
            rc = pc_varint(&c, tp, f, "dropped_attributes_count", wt, &u);
            out->dropped_attributes_count = (uint32_t)u;
            break;
        default:
            rc = pc_skip(&c, tp, f, wt);
            break;
        }
        if (rc != 0) {
            return -1;
        }
    }
    return rc;
}

int rt_otlp_link_parse(const uint8_t *msg, size_t len, rt_otlp_link_view *out,
                       const uint8_t *origin, char *err, size_t errlen)
{
    pctx c;
    pc_init(&c, msg, len, origin, "Span.Link", err, errlen);
    memset(out, 0, sizeof(*out));
    out->msg.p = msg;
    out->msg.len = len;
    uint32_t f;
    int wt, rc;
    size_t tp;
    uint64_t u;
    rt_pb_slice s;
    while ((rc = pc_next(&c, &f, &wt, &tp)) == 1) {
        switch (f) {
        case 1:
            rc = pc_len(&c, tp, f, "trace_id", wt, &out->trace_id);
            break;
        case 2:
            rc = pc_len(&c, tp, f, "span_id", wt, &out->span_id);
            break;
        case 3:
            rc = pc_len(&c, tp, f, "trace_state", wt, &out->trace_state);
            break;
        case 4:
            rc = pc_len(&c, tp, f, "attributes", wt, &s);
            out->n_attributes++;
            break;
        case 5:
            rc = pc_varint(&c, tp, f, "dropped_attributes_count", wt, &u);
            out->dropped_attributes_count = (uint32_t)u;
            break;
        case 6:
            rc = pc_fixed32(&c, tp, f, "flags", wt, &out->flags);
            break;
        default:
            rc = pc_skip(&c, tp, f, wt);
            break;
        }
        if (rc != 0) {
            return -1;
        }
    }
    return rc;
}

int rt_otlp_resource_parse(const uint8_t *msg, size_t len, rt_otlp_resource_view *out,
                           const uint8_t *origin, char *err, size_t errlen)
{
    pctx c;
    pc_init(&c, msg, len, origin, "Resource", err, errlen);
    memset(out, 0, sizeof(*out));
    uint32_t f;
    int wt, rc;
    size_t tp;
    uint64_t u;
    rt_pb_slice s;
    while ((rc = pc_next(&c, &f, &wt, &tp)) == 1) {
        switch (f) {
        case 1:
            rc = pc_len(&c, tp, f, "attributes", wt, &s);
            out->n_attributes++;
            break;
        case 2:
            rc = pc_varint(&c, tp, f, "dropped_attributes_count", wt, &u);
            out->dropped_attributes_count = (uint32_t)u;
            break;
        default:
            rc = pc_skip(&c, tp, f, wt);
            break;
        }
        if (rc != 0) {
            return -1;
        }
    }
    return rc;
}

int rt_otlp_scope_parse(const uint8_t *msg, size_t len, rt_otlp_scope_view *out,
                        const uint8_t *origin, char *err, size_t errlen)
{
    pctx c;
    pc_init(&c, msg, len, origin, "InstrumentationScope", err, errlen);
    memset(out, 0, sizeof(*out));
    uint32_t f;
    int wt, rc;
    size_t tp;
    uint64_t u;
    rt_pb_slice s;
    while ((rc = pc_next(&c, &f, &wt, &tp)) == 1) {
        switch (f) {
        case 1:
            rc = pc_len(&c, tp, f, "name", wt, &out->name);
            break;
        case 2:
            rc = pc_len(&c, tp, f, "version", wt, &out->version);
            break;
        case 3:
            rc = pc_len(&c, tp, f, "attributes", wt, &s);
            out->n_attributes++;
            break;
        case 4:
            rc = pc_varint(&c, tp, f, "dropped_attributes_count", wt, &u);
            out->dropped_attributes_count = (uint32_t)u;
            break;
        default:
            rc = pc_skip(&c, tp, f, wt);
            break;
        }
        if (rc != 0) {
            return -1;
        }
    }
    return rc;
}

/* ---- rt_otlp_validate: a table-driven deep check --------------------------------------------
 *
 * Each message type lists the wire type of its fields (numbered densely from 1; -1 marks a
 * reserved number, treated as unknown). Length-delimited fields that hold messages are handed
 * to the message's `sub` function, which recurses. */

typedef struct vctx {
    const uint8_t *origin;
    char *err;
    size_t errlen;
    size_t spans;
} vctx;

typedef struct fdesc {
    int8_t wt;
    const char *name;
} fdesc;

typedef struct mdesc mdesc;
typedef int (*sub_fn)(vctx *v, uint32_t field, rt_pb_slice s, int depth);

struct mdesc {
    const char *name;
    const fdesc *fields;
    uint32_t n;
    sub_fn sub; /* called for every length-delimited known field; may be NULL */
};

static const mdesc kv_m;

/* An AnyValue holding a scalar (string, bool, int, double, bytes) that the table-driven check
 * below would accept. False for anything else, including arrays and kvlists (which the general
 * path handles). */
static bool any_scalar_ok(rt_pb_slice a)
{
    size_t pos = 0;
    while (pos < a.len) {
        uint32_t f;
        int wt, want;
        if (rt_pb_read_tag(a.p, a.len, &pos, &f, &wt) != 0) {
            return false;
        }
        switch (f) {
        case 1:
        case 7:
            want = RT_PB_WT_LEN;
            break;
        case 2:
        case 3:
            want = RT_PB_WT_VARINT;
            break;
        case 4:
            want = RT_PB_WT_FIXED64;
            break;
        case 5:
        case 6:
            return false;
        default:
            want = -1; /* unknown: skipped, as the table does */
            break;
        }
        if ((want >= 0 && wt != want) || rt_pb_skip(a.p, a.len, &pos, wt) != 0) {
            return false;
        }
    }
    return true;
}

/* An AnyValue laid out the common way (canonical_member) holding a scalar (or nothing). A subset
 * of what any_scalar_ok accepts. */
static inline bool any_canonical_scalar(rt_pb_slice a)
{
    int m = canonical_member(a);
    return m >= 0 && m != 0x2A && m != 0x32;
}

/* An ArrayValue whose values are all laid out as any_canonical_scalar expects. */
static bool array_canonical_scalars(rt_pb_slice arr)
{
    size_t pos = 0;
    while (pos < arr.len) {
        rt_pb_slice el;
        if (arr.p[pos] != 0x0A) { /* values (1), length-delimited */
            return false;
        }
        pos++;
        if (rt_pb_read_len(arr.p, arr.len, &pos, &el) != 0 || !any_canonical_scalar(el)) {
            return false;
        }
    }
    return true;
}

/* The commonest message by far (every attribute of every span): a KeyValue with a scalar value
 * or an array of scalars, checked in one tight loop. It accepts only what the general check
 * accepts; on false the general check runs and, if the input is bad, writes the message. */
static bool kv_fast_ok(rt_pb_slice kv)
{
    rt_pb_slice key, any;
    if (kv_canonical(kv, &key, &any)) {
        int m = canonical_member(any);
        if (m >= 0 && m != 0x32 &&
            (m != 0x2A || array_canonical_scalars((rt_pb_slice){any.p + 2, any.p[1]}))) {
            return true;
        }
    }
    size_t pos = 0;
    while (pos < kv.len) {
        uint32_t f;
        int wt;
        if (rt_pb_read_tag(kv.p, kv.len, &pos, &f, &wt) != 0) {
            return false;
        }
        if (f == 1 || f == 2) {
            rt_pb_slice s;
            if (wt != RT_PB_WT_LEN || rt_pb_read_len(kv.p, kv.len, &pos, &s) != 0 ||
                (f == 2 && !any_scalar_ok(s))) {
                return false;
            }
        } else if (rt_pb_skip(kv.p, kv.len, &pos, wt) != 0) {
            return false;
        }
    }
    return true;
}

static const mdesc span_m, event_m, link_m, status_m;
static int check_msg(vctx *v, const mdesc *m, rt_pb_slice msg, int depth);

/* The message a length-delimited field of a span-level message holds (NULL: bytes/string). */
static const mdesc *span_level_inner(const mdesc *m, uint32_t f)
{
    if (m == &span_m) {
        return f == 9 ? &kv_m : f == 11 ? &event_m : f == 13 ? &link_m : f == 15 ? &status_m : NULL;
    }
    if ((m == &event_m && f == 3) || (m == &link_m && f == 4)) {
        return &kv_m;
    }
    return NULL;
}

/* A Span (or one of its events, links, status) checked in tight loops against the same tables,
 * without building error context. KeyValues with scalar values take kv_fast_ok; any other
 * KeyValue gets the general check on its own. True only when the general check would accept
 * the message; on false the caller runs the general check, which writes the message. */
static bool span_fast_ok(vctx *v, const mdesc *m, rt_pb_slice msg)
{
    size_t pos = 0;
    while (pos < msg.len) {
        uint32_t f;
        int wt;
        if (rt_pb_read_tag(msg.p, msg.len, &pos, &f, &wt) != 0) {
            return false;
        }
        int want = (f >= 1 && f <= m->n) ? m->fields[f - 1].wt : -1;
        if (want >= 0 && wt != want) {
            return false;
        }
        if (want != RT_PB_WT_LEN) {
            if (rt_pb_skip(msg.p, msg.len, &pos, wt) != 0) {
                return false;
            }
            continue;
        }
        rt_pb_slice s;
        if (rt_pb_read_len(msg.p, msg.len, &pos, &s) != 0) {
            return false;
        }
        const mdesc *inner = span_level_inner(m, f);
        if (inner == &kv_m) {
            if (!kv_fast_ok(s) && check_msg(v, &kv_m, s, 0) != 0) {
                return false;
            }
        } else if (inner != NULL && !span_fast_ok(v, inner, s)) {
            return false;
        }
    }
    return true;
}

static int check_msg(vctx *v, const mdesc *m, rt_pb_slice msg, int depth)
{
    if ((m == &kv_m && kv_fast_ok(msg)) || (m == &span_m && span_fast_ok(v, m, msg))) {
        return 0;
    }
    pctx c;
    pc_init(&c, msg.p, msg.len, v->origin, m->name, v->err, v->errlen);
    uint32_t f;
    int wt, rc;
    size_t tp;
    while ((rc = pc_next(&c, &f, &wt, &tp)) == 1) {
        int want = (f >= 1 && f <= m->n) ? m->fields[f - 1].wt : -1;
        if (want < 0) {
            rc = pc_skip(&c, tp, f, wt);
        } else if (wt != want) {
            rc = pc_wrong(&c, tp, f, m->fields[f - 1].name, wt, want);
        } else if (wt == RT_PB_WT_LEN) {
            rt_pb_slice s;
            rc = pc_len(&c, tp, f, m->fields[f - 1].name, wt, &s);
            if (rc == 0 && m->sub) {
                rc = m->sub(v, f, s, depth);
            }
        } else {
            size_t at = c.pos;
            rc = rt_pb_skip(c.msg, c.len, &c.pos, wt);
            if (rc != 0) {
                rc = pc_fail(&c, at, "field %s (%u): %s", m->fields[f - 1].name, f,
                             rt_pb_strerror(rc));
            }
        }
        if (rc != 0) {
            return -1;
        }
    }
    return rc;
}

#define V   RT_PB_WT_VARINT
#define L   RT_PB_WT_LEN
#define F64 RT_PB_WT_FIXED64
#define F32 RT_PB_WT_FIXED32

static int sub_any(vctx *v, uint32_t f, rt_pb_slice s, int depth);
static int sub_kvlist(vctx *v, uint32_t f, rt_pb_slice s, int depth);
static int sub_array(vctx *v, uint32_t f, rt_pb_slice s, int depth);
static int sub_kv_holder(vctx *v, uint32_t f, rt_pb_slice s, int depth);

static const fdesc any_f[] = {{L, "string_value"},   {V, "bool_value"},  {V, "int_value"},
                              {F64, "double_value"}, {L, "array_value"}, {L, "kvlist_value"},
                              {L, "bytes_value"}};
static const mdesc any_m = {"AnyValue", any_f, 7, sub_any};
static const fdesc kv_f[] = {{L, "key"}, {L, "value"}};
static const mdesc kv_m = {"KeyValue", kv_f, 2, sub_kv_holder};
static const fdesc arr_f[] = {{L, "values"}};
static const mdesc arr_m = {"ArrayValue", arr_f, 1, sub_array};
static const fdesc kvl_f[] = {{L, "values"}};
static const mdesc kvl_m = {"KeyValueList", kvl_f, 1, sub_kvlist};

static int too_deep(vctx *v, rt_pb_slice s)
{
    snprintf(v->err, v->errlen, "AnyValue: nested deeper than %d levels at byte %zu",
             RT_OTLP_MAX_DEPTH, (size_t)(s.p - v->origin));
    return -1;
}

/* KeyValue field 2 holds an AnyValue at the same depth. */
static int sub_kv_holder(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    return f == 2 ? check_msg(v, &any_m, s, depth) : 0;
}

/* AnyValue fields 5 and 6 nest one level deeper. */
static int sub_any(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    if (f != 5 && f != 6) {
        return 0;
    }
    if (depth + 1 > RT_OTLP_MAX_DEPTH) {
        return too_deep(v, s);
    }
    return check_msg(v, f == 5 ? &arr_m : &kvl_m, s, depth + 1);
}

static int sub_array(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    return check_msg(v, &any_m, s, depth);
}

static int sub_kvlist(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    return check_msg(v, &kv_m, s, depth);
}

/* For messages whose only nested messages are KeyValue lists (Resource, scope, event, link). */
static int sub_kv_list_field(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    return check_msg(v, &kv_m, s, 0);
}

static int sub_resource(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    return f == 1 ? sub_kv_list_field(v, f, s, depth) : 0;
}
static int sub_scope(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    return f == 3 ? sub_kv_list_field(v, f, s, depth) : 0;
}
static int sub_event(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    return f == 3 ? sub_kv_list_field(v, f, s, depth) : 0;
}
static int sub_link(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    return f == 4 ? sub_kv_list_field(v, f, s, depth) : 0;
}

static const fdesc res_f[] = {{L, "attributes"}, {V, "dropped_attributes_count"}};
static const mdesc res_m = {"Resource", res_f, 2, sub_resource};
static const fdesc scope_f[] = {
    {L, "name"}, {L, "version"}, {L, "attributes"}, {V, "dropped_attributes_count"}};
static const mdesc scope_m = {"InstrumentationScope", scope_f, 4, sub_scope};
static const fdesc event_f[] = {
    {F64, "time_unix_nano"}, {L, "name"}, {L, "attributes"}, {V, "dropped_attributes_count"}};
static const mdesc event_m = {"Span.Event", event_f, 4, sub_event};
static const fdesc link_f[] = {{L, "trace_id"},
                               {L, "span_id"},
                               {L, "trace_state"},
                               {L, "attributes"},
                               {V, "dropped_attributes_count"},
                               {F32, "flags"}};
static const mdesc link_m = {"Span.Link", link_f, 6, sub_link};
static const fdesc status_f[] = {{-1, "reserved"}, {L, "message"}, {V, "code"}};
static const mdesc status_m = {"Status", status_f, 3, NULL};

static int sub_span(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    switch (f) {
    case 9:
        return check_msg(v, &kv_m, s, 0);
    case 11:
        return check_msg(v, &event_m, s, 0);
    case 13:
        return check_msg(v, &link_m, s, 0);
    case 15:
        return check_msg(v, &status_m, s, 0);
    default:
        return 0;
    }
}

static const fdesc span_f[] = {{L, "trace_id"},
                               {L, "span_id"},
                               {L, "trace_state"},
                               {L, "parent_span_id"},
                               {L, "name"},
                               {V, "kind"},
                               {F64, "start_time_unix_nano"},
                               {F64, "end_time_unix_nano"},
                               {L, "attributes"},
                               {V, "dropped_attributes_count"},
                               {L, "events"},
                               {V, "dropped_events_count"},
                               {L, "links"},
                               {V, "dropped_links_count"},
                               {L, "status"},
                               {F32, "flags"}};
static const mdesc span_m = {"Span", span_f, 16, sub_span};

static int sub_scope_spans(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    if (f == 1) {
        return check_msg(v, &scope_m, s, 0);
    }
    if (f == 2) {
        v->spans++;
        return check_msg(v, &span_m, s, 0);
    }
    return 0;
}

static const fdesc ss_f[] = {{L, "scope"}, {L, "spans"}, {L, "schema_url"}};
static const mdesc ss_m = {"ScopeSpans", ss_f, 3, sub_scope_spans};

static int sub_resource_spans(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    if (f == 1) {
        return check_msg(v, &res_m, s, 0);
    }
    if (f == 2) {
        return check_msg(v, &ss_m, s, 0);
    }
    return 0;
}

static const fdesc rs_f[] = {{L, "resource"}, {L, "scope_spans"}, {L, "schema_url"}};
static const mdesc rs_m = {"ResourceSpans", rs_f, 3, sub_resource_spans};

static int sub_request(vctx *v, uint32_t f, rt_pb_slice s, int depth)
{
    return check_msg(v, &rs_m, s, 0);
}

static const fdesc req_f[] = {{L, "resource_spans"}};
static const mdesc req_m = {"ExportTraceServiceRequest", req_f, 1, sub_request};

#undef V
#undef L
#undef F64
#undef F32

/* What is wrong with a Span that span_walk refused, from the validator's check of it
 * (the same field table): the message names the field and the byte. */
static int span_error(const uint8_t *msg, size_t len, const uint8_t *origin, char *err,
                      size_t errlen)
{
    char scratch[RT_OTLP_ERR_MAX];
    vctx v = {origin, err ? err : scratch, err ? errlen : sizeof(scratch), 0};
    if (check_msg(&v, &span_m, (rt_pb_slice){msg, len}, 0) == 0 && v.errlen > 0) {
        /* Not reachable: the check accepts nothing span_walk refuses. */
        snprintf(v.err, v.errlen, "Span: malformed at byte %zu", (size_t)(msg - origin));
    }
    return -1;
}

static int check_head(const uint8_t *origin, bool resource, rt_pb_slice s, char *err, size_t errlen)
{
    vctx v = {origin, err, errlen, 0};
    return check_msg(&v, resource ? &res_m : &scope_m, s, 0);
}

/* One KeyValue as the validator checks it; no message (the span check writes it). */
static bool kv_ok(rt_pb_slice kv)
{
    char scratch[RT_OTLP_ERR_MAX];
    vctx v = {kv.p, scratch, sizeof(scratch), 0};
    return kv_fast_ok(kv) || check_msg(&v, &kv_m, kv, 0) == 0;
}

/* A Span.Event or Span.Link (`m`) as the validator checks it; no message. */
static bool child_ok(const mdesc *m, rt_pb_slice s)
{
    char scratch[RT_OTLP_ERR_MAX];
    vctx v = {s.p, scratch, sizeof(scratch), 0};
    return span_fast_ok(&v, m, s) || check_msg(&v, m, s, 0) == 0;
}

int rt_otlp_validate(const uint8_t *pb, size_t len, size_t *span_count, char *err, size_t errlen)
{
    char scratch[RT_OTLP_ERR_MAX];
    vctx v = {pb, err ? err : scratch, err ? errlen : sizeof(scratch), 0};
    rt_pb_slice all = {pb, pb ? len : 0};
    if (v.errlen > 0) {
        v.err[0] = '\0';
    }
    if (check_msg(&v, &req_m, all, 0) != 0) {
        return -1;
    }
    if (span_count) {
        *span_count = v.spans;
    }
    return 0;
}

/* ---- the span parse ------------------------------------------------------------------ */

/* One span attribute in the span walk: checked as the validator would (`check`) and indexed
 * (`ks`). False only when `check` finds it malformed. */
static inline bool attr_take(rt_pb_slice s, bool check, const rt_otlp_keyset *ks, rt_pb_slice *kv)
{
    rt_pb_slice key, any;
    bool canon = kv_canonical(s, &key, &any);
    if (check && !(canon && any_canonical_scalar(any)) && !kv_ok(s)) {
        return false;
    }
    if (ks != NULL && (canon || kv_key(s, &key) == 0)) {
        keyset_hit(ks, kv, key, s);
    }
    return true;
}

/* A Span's direct fields (and its Status, merged field by field across repeated occurrences as
 * protobuf merges a message) in one tight loop: true when they are well-formed; false on
 * anything malformed, and span_error then says what and where. `check`: attributes, events and
 * links are validated too; `ks`: attributes are indexed into kv. Inlined into span_parse once
 * per value of `check`, so the unchecked parse pays nothing for the checked one. */
static inline __attribute__((always_inline)) bool span_walk(const uint8_t *msg, size_t len,
                                                            rt_otlp_span_view *v, bool check,
                                                            const rt_otlp_keyset *ks,
                                                            rt_pb_slice *kv)
{
    size_t pos = 0;
    while (pos < len) {
        uint32_t f;
        int wt;
        uint64_t u;
        rt_pb_slice s;
        if (rt_pb_read_tag(msg, len, &pos, &f, &wt) != 0) {
            return false;
        }
        int want = f <= 16 ? span_wt[f] : -1;
        if (want >= 0 && wt != want) {
            return false;
        }
        switch (f) {
        case 1:
        case 2:
        case 3:
        case 4:
        case 5:
        case 9:
        case 11:
        case 13:
        case 15:
            if (rt_pb_read_len(msg, len, &pos, &s) != 0) {
                return false;
            }
            switch (f) {
            case 1:
                v->trace_id = s;
                break;
            case 2:
                v->span_id = s;
                break;
            case 3:
                v->trace_state = s;
                break;
            case 4:
                v->parent_span_id = s;
                break;
            case 5:
                v->name = s;
                break;
            case 9:
                v->n_attributes++;
                if ((check || ks != NULL) && !attr_take(s, check, ks, kv)) {
                    return false;
                }
                break;
            case 11:
                v->n_events++;
                if (check && !child_ok(&event_m, s)) {
                    return false;
                }
                break;
            case 13:
                v->n_links++;
                if (check && !child_ok(&link_m, s)) {
                    return false;
                }
                break;
            default: /* 15 */
                v->has_status = 1;
                if (!status_merge_fast(s, v)) {
                    return false;
                }
                break;
            }
            break;
        case 6:
        case 10:
        case 12:
        case 14:
            if (rt_pb_read_varint(msg, len, &pos, &u) != 0) {
                return false;
            }
            if (f == 6) {
                v->kind = (int32_t)u;
            } else if (f == 10) {
                v->dropped_attributes_count = (uint32_t)u;
            } else if (f == 12) {
                v->dropped_events_count = (uint32_t)u;
            } else {
                v->dropped_links_count = (uint32_t)u;
            }
            break;
        case 7:
        case 8:
            if (rt_pb_read_fixed64(msg, len, &pos, f == 7 ? &v->start_ns : &v->end_ns) != 0) {
                return false;
            }
            break;
        case 16:
            if (rt_pb_read_fixed32(msg, len, &pos, &v->flags) != 0) {
                return false;
            }
            break;
        default:
            if (rt_pb_skip(msg, len, &pos, wt) != 0) {
                return false;
            }
            break;
        }
    }
    return true;
}

static int span_parse(const uint8_t *msg, size_t len, rt_otlp_span_view *v, const uint8_t *origin,
                      bool check, const rt_otlp_keyset *ks, rt_pb_slice *kv, char *err,
                      size_t errlen)
{
    v->span.p = msg;
    v->span.len = len;
    v->trace_id = v->span_id = v->trace_state = v->parent_span_id = v->name = no_slice;
    v->status_message = no_slice;
    v->kind = 0;
    v->start_ns = v->end_ns = 0;
    v->dropped_attributes_count = v->dropped_events_count = v->dropped_links_count = 0;
    v->has_status = 0;
    v->status_code = 0;
    v->flags = 0;
    v->n_attributes = v->n_events = v->n_links = 0;
    v->attr_keys = ks;
    v->attr_kv = kv;
    if (ks != NULL) {
        memset(kv, 0, ks->n * sizeof(*kv));
    }
    /* Two calls with a constant `check`, so each gets its own inlined copy of the walk. */
    if (check ? span_walk(msg, len, v, true, ks, kv) : span_walk(msg, len, v, false, ks, kv)) {
        return 0;
    }
    return span_error(msg, len, origin, err, errlen);
}
