/* otlp_split.c - one-walk structural check + split of a request by trace owner (otlp_split.h). */
#include "otlp_split.h"

#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Field numbers shared by ResourceSpans and ScopeSpans (1 head, 2 children, 3 schema_url), the
 * request (1 resource_spans) and Span (1 trace_id). */
#define F_HEAD  1
#define F_CHILD 2
#define F_URL   3

/* ---- the wire reader ----------------------------------------------------------------------
 *
 * rd_field reads one field at *pp (which must be < e) and checks it as rt_pb_read_tag and
 * rt_pb_skip do: the tag is a valid field number, the wire type is 0, 1, 2 or 5, and the value
 * lies inside [*pp, e). The common shapes (one-byte tag, one- or two-byte length, one-byte
 * varint) are decoded inline; anything else goes through pb.h's general readers, so the rules
 * are those of the rest of the code base. */

static int rd_varint_slow(const uint8_t **pp, const uint8_t *e, uint64_t *v)
{
    size_t pos = 0;
    if (rt_pb_read_varint(*pp, (size_t)(e - *pp), &pos, v) != 0) {
        return -1;
    }
    *pp += pos;
    return 0;
}

static inline int rd_field(const uint8_t **pp, const uint8_t *e, uint32_t *f, int *wt,
                           rt_pb_slice *val)
{
    const uint8_t *p = *pp;
    unsigned t = *p;
    if (__builtin_expect(t >= 8 && t < 0x80, 1)) {
        *f = t >> 3;
        *wt = (int)(t & 7);
        p++;
    } else {
        size_t pos = 0;
        if (rt_pb_read_tag(p, (size_t)(e - p), &pos, f, wt) != 0) {
            return -1;
        }
        p += pos;
    }
    switch (*wt) {
    case RT_PB_WT_LEN: {
        uint64_t n;
        if (e - p >= 2 && p[0] < 0x80) {
            n = p[0];
            p++;
        } else if (e - p >= 2 && p[1] < 0x80) {
            n = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
            p += 2;
        } else if (rd_varint_slow(&p, e, &n) != 0) {
            return -1;
        }
        if (n > (uint64_t)(e - p)) {
            return -1;
        }
        val->p = p;
        val->len = (size_t)n;
        p += n;
        break;
    }
    case RT_PB_WT_VARINT:
        if (p < e && *p < 0x80) {
            p++;
        } else {
            uint64_t v;
            if (rd_varint_slow(&p, e, &v) != 0) {
                return -1;
            }
        }
        break;
    case RT_PB_WT_FIXED64:
        if (e - p < 8) {
            return -1;
        }
        p += 8;
        break;
    case RT_PB_WT_FIXED32:
        if (e - p < 4) {
            return -1;
        }
        p += 4;
        break;
    default: /* groups (3, 4) and 6, 7 */
        return -1;
    }
    *pp = p;
    return 0;
}

/* A Span in b[0..len): its trace_id, read the way a router can afford per span. The fields
 * before the first trace_id (field 1) are checked as rd_field does, and that field must be
 * length-delimited; the rest of the span is not read: its bytes are forwarded as they are, and
 * the sampler, which validates every span in full, refuses a span malformed further in (its
 * 400 reaches the client as rejected spans). SDKs write trace_id first, so this is normally
 * one tag and one length. A span with more than one trace_id is placed by the first (the
 * samplers read the last; no SDK writes two). Returns 0 with *tid (len 0 when the span has
 * none), or -1. */
static inline int span_trace_id(const uint8_t *b, size_t len, rt_pb_slice *tid)
{
    if (__builtin_expect(len >= 2 && b[0] == 0x0a && b[1] < 0x80, 1)) {
        if ((size_t)b[1] + 2 > len) {
            return -1;
        }
        tid->p = b + 2;
        tid->len = b[1];
        return 0;
    }
    const uint8_t *p = b, *e = b + len;
    while (p < e) {
        uint32_t f;
        int wt;
        rt_pb_slice v;
        if (rd_field(&p, e, &f, &wt, &v) != 0) {
            return -1;
        }
        if (f == 1) {
            if (wt != RT_PB_WT_LEN) {
                return -1;
            }
            *tid = v;
            return 0;
        }
    }
    tid->p = NULL;
    tid->len = 0;
    return 0;
}

/* ---- parts ------------------------------------------------------------------------------- */

void rt_otlp_part_init(rt_otlp_part *p)
{
    memset(p, 0, sizeof *p);
}

void rt_otlp_part_reset(rt_otlp_part *p)
{
    p->n_scopes = p->n_runs = 0;
    p->spans = p->run_bytes = 0;
}

void rt_otlp_part_free(rt_otlp_part *p)
{
    free(p->scopes);
    free(p->runs);
    memset(p, 0, sizeof *p);
}

/* Grow `arr` (of `cap` elements of `size`) to hold one more than `n`. */
static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) {
        return arr;
    }
    *cap = *cap ? 2 * *cap : 8;
    return rt_realloc(arr, *cap * size);
}

static size_t opt_str_size(uint32_t field, rt_pb_slice s)
{
    return s.len ? rt_pb_len_field_size(field, s.len) : 0;
}

static uint8_t *put_len_prefix(uint8_t *w, uint32_t field, size_t n)
{
    w += rt_pb_put_varint(w, (uint64_t)field << 3 | RT_PB_WT_LEN);
    return w + rt_pb_put_varint(w, n);
}

static uint8_t *put_bytes(uint8_t *w, rt_pb_slice s)
{
    if (s.len) {
        memcpy(w, s.p, s.len);
    }
    return w + s.len;
}

static uint8_t *put_opt_str(uint8_t *w, uint32_t field, rt_pb_slice s)
{
    if (s.len == 0) {
        return w;
    }
    return put_bytes(put_len_prefix(w, field, s.len), s);
}

size_t rt_otlp_part_write(rt_otlp_part *p, rt_buf *out)
{
    /* Pass 1: sizes bottom-up, so each length prefix is written once, minimal. */
    size_t total = 0;
    for (size_t i = 0, j; i < p->n_scopes; i = j) {
        rt_otlp_part_scope *head = &p->scopes[i];
        size_t rs = head->resource.p ? rt_pb_len_field_size(F_HEAD, head->resource.len) : 0;
        for (j = i; j < p->n_scopes && p->scopes[j].res_seq == head->res_seq; j++) {
            rt_otlp_part_scope *s = &p->scopes[j];
            size_t ss = s->scope.p ? rt_pb_len_field_size(F_HEAD, s->scope.len) : 0;
            for (size_t k = s->first_run; k < s->first_run + s->n_runs; k++) {
                ss += p->runs[k].len;
            }
            ss += opt_str_size(F_URL, s->scope_url);
            s->size = ss;
            rs += rt_pb_len_field_size(F_CHILD, ss);
        }
        rs += opt_str_size(F_URL, head->resource_url);
        head->rs_size = rs;
        total += rt_pb_len_field_size(F_HEAD, rs);
    }
    if (total == 0) {
        return 0;
    }
    /* Pass 2: write, fields in field-number order as protobuf libraries do. */
    uint8_t *w = rt_buf_reserve(out, total);
    for (size_t i = 0, j; i < p->n_scopes; i = j) {
        rt_otlp_part_scope *head = &p->scopes[i];
        w = put_len_prefix(w, F_HEAD, head->rs_size);
        if (head->resource.p) {
            w = put_bytes(put_len_prefix(w, F_HEAD, head->resource.len), head->resource);
        }
        for (j = i; j < p->n_scopes && p->scopes[j].res_seq == head->res_seq; j++) {
            rt_otlp_part_scope *s = &p->scopes[j];
            w = put_len_prefix(w, F_CHILD, s->size);
            if (s->scope.p) {
                w = put_bytes(put_len_prefix(w, F_HEAD, s->scope.len), s->scope);
            }
            for (size_t k = s->first_run; k < s->first_run + s->n_runs; k++) {
                w = put_bytes(w, p->runs[k]);
            }
            w = put_opt_str(w, F_URL, s->scope_url);
        }
        w = put_opt_str(w, F_URL, head->resource_url);
    }
    out->len += total;
    return total;
}

/* ---- the split --------------------------------------------------------------------------- */

void rt_otlp_splitter_init(rt_otlp_splitter *sp, rt_otlp_split_owner_fn owner,
                           rt_otlp_split_part_fn part, void *arg)
{
    memset(sp, 0, sizeof *sp);
    sp->owner = owner;
    sp->part = part;
    sp->arg = arg;
}

void rt_otlp_splitter_free(rt_otlp_splitter *sp)
{
    free(sp->open);
    memset(sp, 0, sizeof *sp);
}

/* Give owner `o` the run [s, e) of `n` spans under the current scope. */
static void add_run(rt_otlp_splitter *sp, int o, const uint8_t *s, const uint8_t *e, size_t n)
{
    rt_otlp_part *p = sp->part(sp->arg, o);
    rt_otlp_part_scope *sc = p->n_scopes ? &p->scopes[p->n_scopes - 1] : NULL;
    if (sc == NULL || sc->scope_seq != sp->scope_seq || sc->res_seq != sp->res_seq) {
        p->scopes = grow(p->scopes, &p->cap_scopes, p->n_scopes, sizeof *p->scopes);
        sc = &p->scopes[p->n_scopes];
        memset(sc, 0, sizeof *sc);
        sc->res_seq = sp->res_seq;
        sc->scope_seq = sp->scope_seq;
        sc->first_run = p->n_runs;
        /* Its resource and scope are filled in when the walk has seen all of them (proto3
         * lets them follow the spans). */
        sp->open = grow(sp->open, &sp->cap_open, sp->n_open, sizeof *sp->open);
        sp->open[sp->n_open].part = p;
        sp->open[sp->n_open].scope = p->n_scopes;
        sp->n_open++;
        p->n_scopes++;
    }
    p->runs = grow(p->runs, &p->cap_runs, p->n_runs, sizeof *p->runs);
    p->runs[p->n_runs].p = s;
    p->runs[p->n_runs].len = (size_t)(e - s);
    p->n_runs++;
    sc->n_runs++;
    p->spans += n;
    p->run_bytes += (size_t)(e - s);
}

/* The fields of a ScopeSpans in [p, e): route its spans, keep its (last) scope and schema_url
 * in *scope / *url (untouched when absent). Returns 0 or -1 (malformed). */
static int walk_scope_spans(rt_otlp_splitter *sp, const uint8_t *p, const uint8_t *e,
                            rt_pb_slice *scope, rt_pb_slice *url)
{
    int run_owner = -1;
    const uint8_t *run_start = NULL, *run_end = NULL;
    size_t run_spans = 0;
    while (p < e) {
        const uint8_t *field = p;
        uint32_t f;
        int wt;
        rt_pb_slice v;
        if (rd_field(&p, e, &f, &wt, &v) != 0) {
            return -1;
        }
        if (f > F_URL) {
            continue; /* unknown: skipped, but it ends a run (p moved past it) */
        }
        if (wt != RT_PB_WT_LEN) {
            return -1;
        }
        if (f == F_HEAD) {
            *scope = v;
            continue;
        }
        if (f == F_URL) {
            *url = v;
            continue;
        }
        /* A span. */
        rt_pb_slice tid;
        if (span_trace_id(v.p, v.len, &tid) != 0) {
            return -1;
        }
        sp->spans++;
        uint64_t a, b;
        int o;
        if (tid.len != 16 || (memcpy(&a, tid.p, 8), memcpy(&b, tid.p + 8, 8), (a | b) == 0)) {
            sp->invalid++;
            o = -1;
        } else if (sp->have_last && a == sp->last_a && b == sp->last_b) {
            o = sp->last_owner;
            if (o < 0) {
                sp->unplaced++;
            }
        } else {
            o = sp->owner(sp->arg, tid.p);
            sp->last_a = a;
            sp->last_b = b;
            sp->last_owner = o;
            sp->have_last = 1;
            if (o < 0) {
                sp->unplaced++;
            }
        }
        if (o >= 0 && o == run_owner && run_end == field) {
            run_end = p;
            run_spans++;
            continue;
        }
        if (run_owner >= 0) {
            add_run(sp, run_owner, run_start, run_end, run_spans);
        }
        run_owner = o;
        run_start = field;
        run_end = p;
        run_spans = 1;
    }
    if (run_owner >= 0) {
        add_run(sp, run_owner, run_start, run_end, run_spans);
    }
    return 0;
}

/* Set the scope context of the part scopes opened since `mark`. */
static void set_scope(rt_otlp_splitter *sp, size_t mark, rt_pb_slice scope, rt_pb_slice url)
{
    for (size_t i = mark; i < sp->n_open; i++) {
        rt_otlp_part_scope *s = &sp->open[i].part->scopes[sp->open[i].scope];
        s->scope = scope;
        s->scope_url = url;
    }
}

/* Set the resource context of every part scope opened in this ResourceSpans; start the next. */
static void set_resource(rt_otlp_splitter *sp, rt_pb_slice res, rt_pb_slice url)
{
    for (size_t i = 0; i < sp->n_open; i++) {
        rt_otlp_part_scope *s = &sp->open[i].part->scopes[sp->open[i].scope];
        s->resource = res;
        s->resource_url = url;
    }
    sp->n_open = 0;
}

static int walk_resource_spans(rt_otlp_splitter *sp, const uint8_t *p, const uint8_t *e)
{
    rt_pb_slice res = {NULL, 0}, url = {NULL, 0};
    while (p < e) {
        uint32_t f;
        int wt;
        rt_pb_slice v;
        if (rd_field(&p, e, &f, &wt, &v) != 0) {
            return -1;
        }
        if (f > F_URL) {
            continue;
        }
        if (wt != RT_PB_WT_LEN) {
            return -1;
        }
        if (f == F_HEAD) {
            res = v;
        } else if (f == F_URL) {
            url = v;
        } else {
            rt_pb_slice scope = {NULL, 0}, surl = {NULL, 0};
            size_t mark = sp->n_open;
            if (walk_scope_spans(sp, v.p, v.p + v.len, &scope, &surl) != 0) {
                return -1;
            }
            set_scope(sp, mark, scope, surl);
            sp->scope_seq++;
        }
    }
    set_resource(sp, res, url);
    return 0;
}

static void split_begin(rt_otlp_splitter *sp)
{
    sp->spans = sp->invalid = sp->unplaced = 0;
    sp->err[0] = '\0';
    sp->n_open = 0;
    sp->res_seq = sp->scope_seq = 0;
    sp->have_last = 0;
}

int rt_otlp_split(rt_otlp_splitter *sp, const uint8_t *pb, size_t len)
{
    split_begin(sp);
    const uint8_t *p = pb, *e = pb ? pb + len : pb;
    while (p < e) {
        uint32_t f;
        int wt;
        rt_pb_slice v;
        if (rd_field(&p, e, &f, &wt, &v) != 0) {
            goto fail;
        }
        if (f != 1) {
            continue;
        }
        if (wt != RT_PB_WT_LEN || walk_resource_spans(sp, v.p, v.p + v.len) != 0) {
            goto fail;
        }
        sp->res_seq++;
    }
    return 0;

fail:
    /* Malformed: the message is the structural check's, so the client reads the same 400 it
     * got when the listener ran that check. (Only this error path walks the request twice.) */
    sp->n_open = 0;
    size_t n = 0;
    if (rt_otlp_check_structure(pb, len, &n, sp->err, sizeof sp->err) == 0) {
        snprintf(sp->err, sizeof sp->err, "request: malformed"); /* the walks disagree: a bug */
    }
    return -1;
}

void rt_otlp_split_part(rt_otlp_splitter *sp, const rt_otlp_part *src)
{
    split_begin(sp);
    for (size_t i = 0; i < src->n_scopes; i++) {
        const rt_otlp_part_scope *s = &src->scopes[i];
        sp->res_seq = s->res_seq;
        sp->scope_seq = s->scope_seq;
        for (size_t k = s->first_run; k < s->first_run + s->n_runs; k++) {
            rt_pb_slice unused_scope = {NULL, 0}, unused_url = {NULL, 0};
            /* A run is a well-formed fragment of a ScopeSpans: it was checked when split. */
            if (walk_scope_spans(sp, src->runs[k].p, src->runs[k].p + src->runs[k].len,
                                 &unused_scope, &unused_url) != 0) {
                abort();
            }
        }
        set_scope(sp, 0, s->scope, s->scope_url);
        set_resource(sp, s->resource, s->resource_url);
    }
}
