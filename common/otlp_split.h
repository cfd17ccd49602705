/* otlp_split.h - split an encoded ExportTraceServiceRequest by the owner of each span's trace id,
 * in one walk that is also the request's structural check.
 *
 * This is the router's per-span path (router/forward.c; bench/router_cost.c measures the same
 * code). One pass over the request:
 *   - checks what rt_otlp_check_structure checks, and nothing more: every tag and length of the
 *     request, each ResourceSpans, each ScopeSpans and each span's top-level fields; the known
 *     message fields there (resource_spans, resource, scope_spans, scope, spans, schema_url,
 *     trace_id) have the length-delimited wire type. Attributes, events, links, Resource and
 *     InstrumentationScope contents are not looked into (the samplers validate every span in
 *     full, and a sampler's 400 reaches the client as rejected spans). A request is accepted
 *     here exactly when rt_otlp_check_structure accepts it, and refused with its message;
 *   - takes each span's trace id (field 1, last occurrence wins, as the samplers read it);
 *     a span whose trace id is not 16 bytes or is all zero is counted `invalid` and left out;
 *   - asks the caller for the owner of each trace id (once per run of spans with the same
 *     trace id: an SDK sends a trace's spans together) and records, per owner, *runs*: slices
 *     of consecutive span fields (tag, length and Span bytes, as they sit in the request) that go
 *     to the same owner. A part is a list of (Resource, ScopeSpans) groups of runs; nothing is
 *     copied until rt_otlp_part_write writes it out with one memcpy per run.
 *
 * Every slice a part holds points into the split buffer, which must outlive the part (the
 * router's request bytes live until the client is answered, and a part is only re-split
 * before that).
 *
 * Output: for each owner, its spans under their original Resource and InstrumentationScope
 * (bytes and schema_urls copied), in request order; ResourceSpans and ScopeSpans without spans
 * for that owner are left out. When the request's span fields use the minimal encoding of
 * their tag and length (every protobuf library writes them so), a part is byte-identical to
 * re-encoding its spans one by one with otlp_encode.
 */
#ifndef RT_OTLP_SPLIT_H
#define RT_OTLP_SPLIT_H

#include "buf.h"
#include "otlp_scan.h"
#include "pb.h"

#include <stddef.h>
#include <stdint.h>

/* One ScopeSpans of a part: its context and its runs (part->runs[first_run, first_run+n_runs)). */
typedef struct rt_otlp_part_scope {
    rt_pb_slice resource; /* Resource message; p NULL: ResourceSpans had none */
    rt_pb_slice resource_url;
    rt_pb_slice scope; /* InstrumentationScope; p NULL: ScopeSpans had none */
    rt_pb_slice scope_url;
    size_t res_seq;   /* ordinal of the source ResourceSpans: equal values share one */
    size_t scope_seq; /* ordinal of the source ScopeSpans in the request */
    size_t first_run, n_runs;
    size_t size;    /* rt_otlp_part_write scratch: ScopeSpans payload bytes */
    size_t rs_size; /* rt_otlp_part_write scratch: ResourceSpans payload bytes (first of a group) */
} rt_otlp_part_scope;

/* What one owner gets from a split. Owns its two arrays (not the bytes they point at). */
typedef struct rt_otlp_part {
    rt_otlp_part_scope *scopes;
    size_t n_scopes, cap_scopes;
    rt_pb_slice *runs; /* each: whole `spans` fields (tag + length + Span), back to back */
    size_t n_runs, cap_runs;
    size_t spans;     /* spans in the runs */
    size_t run_bytes; /* bytes in the runs */
} rt_otlp_part;

void rt_otlp_part_init(rt_otlp_part *p);
/* Forget the contents, keep the arrays (for reuse in the next split). */
void rt_otlp_part_reset(rt_otlp_part *p);
void rt_otlp_part_free(rt_otlp_part *p);

/* Append the part as an ExportTraceServiceRequest to `out` (exact size reserved once: minimal
 * length prefixes for the ResourceSpans and ScopeSpans it writes, the runs copied as they are).
 * Returns the bytes appended (0 for an empty part). */
size_t rt_otlp_part_write(rt_otlp_part *p, rt_buf *out);

/* Owner of a valid trace id (16 bytes, not all zero): an index >= 0, or -1 when no owner can
 * take it (the span is counted `unplaced` and left out). */
typedef int (*rt_otlp_split_owner_fn)(void *arg, const uint8_t *trace_id);
/* The part collecting owner `owner`'s spans in the current split: the same part for every call
 * with the same owner during one split, empty on the first one (the caller opens or resets it
 * there). Never NULL. */
typedef rt_otlp_part *(*rt_otlp_split_part_fn)(void *arg, int owner);

typedef struct rt_otlp_split_open {
    rt_otlp_part *part;
    size_t scope; /* index in part->scopes */
} rt_otlp_split_open;

/* Splitter: callbacks, scratch reused across splits (no allocation per request once warm),
 * and the counts of the last split. One per thread. */
typedef struct rt_otlp_splitter {
    rt_otlp_split_owner_fn owner;
    rt_otlp_split_part_fn part;
    void *arg;
    /* results of the last split */
    size_t spans;    /* spans walked (valid or not) */
    size_t invalid;  /* trace id not 16 bytes or all zero */
    size_t unplaced; /* owner() said -1 */
    char err[RT_OTLP_ERR_MAX];
    /* scratch */
    rt_otlp_split_open *open; /* part scopes opened in the current ResourceSpans */
    size_t n_open, cap_open;
    size_t res_seq, scope_seq;
    uint64_t last_a, last_b; /* the last trace id looked up, and its owner */
    int last_owner;
    int have_last;
} rt_otlp_splitter;

void rt_otlp_splitter_init(rt_otlp_splitter *sp, rt_otlp_split_owner_fn owner,
                           rt_otlp_split_part_fn part, void *arg);
void rt_otlp_splitter_free(rt_otlp_splitter *sp);

/* Split pb[0..len) (protobuf ExportTraceServiceRequest; NULL/0 is an empty request). Returns 0,
 * with sp->spans / invalid / unplaced set and every placed span in exactly one part; or -1 when
 * the request is malformed, with rt_otlp_check_structure's message for it in sp->err (the
 * parts then hold an unspecified subset: discard them, send none). */
int rt_otlp_split(rt_otlp_splitter *sp, const uint8_t *pb, size_t len);

/* Split the spans of `src` (a part filled by an earlier rt_otlp_split, whose buffer is still
 * valid) again, e.g. on a ring with its owner marked down: same grouping, same contexts. `src`
 * must not be one of the parts sp->part hands out during this call. Sets the counts as
 * rt_otlp_split does (invalid stays 0). */
void rt_otlp_split_part(rt_otlp_splitter *sp, const rt_otlp_part *src);

#endif
