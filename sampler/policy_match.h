/* policy_match.h - matching helpers shared by the attribute policies (string, numeric, boolean)
 * and span_count's span_filter: scoped attribute lookup with array expansion, string value sets
 * (exact or regex), numeric ranges with OTel's "0 = unbounded" rule, and the span filter.
 *
 * Scope (the `scope:` key of the attribute policies) says where a key is looked up on a span:
 *   any      - the span's attributes, then its resource's (OTel's reading; the default);
 *   span     - the span's attributes only;
 *   root     - the attributes of a root span (empty parent_span_id) only; the root's resource is
 *              not consulted, and other spans contribute nothing;
 *   resource - the resource's attributes only.
 * In each place the first KeyValue with the key counts (the OTLP data model reads duplicated
 * keys that way). If its value is an array, every element is offered instead (an array matches
 * when any element does); elements that are themselves arrays or kvlists are skipped, and
 * kvlist values are never searched. OTel never matches inside arrays: ringtail does, on purpose,
 * because GenAI conventions carry lists (gen_ai.response.finish_reasons).
 *
 * Nothing here allocates on the matching path, except glibc's regexec internally and a heap
 * copy of a string value of 512 bytes or more for regex matching (regexec wants a NUL).
 */
#ifndef RT_POLICY_MATCH_H
#define RT_POLICY_MATCH_H

#include "config.h"
#include "otlp_scan.h"

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- scope and the attribute visitor ------------------------------------------------------- */

typedef enum rt_pol_scope {
    RT_POL_SCOPE_ANY = 0,
    RT_POL_SCOPE_SPAN,
    RT_POL_SCOPE_ROOT,
    RT_POL_SCOPE_RESOURCE,
} rt_pol_scope;

/* Choices of the `scope` enum key, in rt_pol_scope order (NULL-terminated). */
extern const char *const rt_pol_scope_choices[];

/* ---- one attribute walk per span ------------------------------------------------------------
 *
 * Every attribute key some policy of a set looks up is registered once when the set is built
 * (rt_pol_keys_add; the policy keeps the id in its rt_pol_key). Per span, the first lookup walks
 * the span's attributes once and records the KeyValue of every registered key (rt_pol_span);
 * every later lookup of that span, by any policy, is an array read. Resource attributes are
 * indexed the same way and the index is kept while consecutive spans carry the same resource
 * bytes (compared by content, so a reused request buffer cannot fool it). A set with more than
 * RT_POL_MAX_KEYS distinct keys looks the others up key by key, as before. */

#define RT_POL_MAX_KEYS RT_OTLP_KEYSET_MAX

/* An attribute key as a policy holds it. */
typedef struct rt_pol_key {
    const char *s; /* ref: the policy config's string */
    size_t len;
    int id; /* index in the set's rt_pol_keys, -1 = not registered (looked up key by key) */
} rt_pol_key;

/* The distinct keys of a policy set (refs to the policies' strings). The trace buffer hands it
 * to the span walk (rt_otlp_scan_next_keyed), so the index is made while the span is parsed. */
typedef rt_otlp_keyset rt_pol_keys;

/* Register k (s and len set) in `reg`: k->id becomes its index (shared with an equal key), or
 * -1 when the registry is full. */
void rt_pol_keys_add(rt_pol_keys *reg, rt_pol_key *k);

/* The resource-attribute index, kept across the spans of a worker (owned by its engine). */
typedef struct rt_pol_res_index {
    uint8_t *bytes; /* owned copy of the indexed Resource message (len 0: none indexed yet) */
    size_t len, cap;
    rt_pb_slice kv[RT_POL_MAX_KEYS]; /* into `bytes` */
} rt_pol_res_index;

void rt_pol_res_index_free(rt_pol_res_index *r);

/* One span as the policies observe it: the view, plus the attribute index (the walk's, when
 * it indexed by this set's keys; else built here on first use). */
typedef struct rt_pol_span {
    const rt_otlp_span_view *v;
    const rt_pol_keys *keys; /* ref: the set's */
    rt_pol_res_index *res;   /* ref: the engine's */
    bool res_checked;
    const rt_pb_slice *span_kv; /* NULL until indexed */
    rt_pb_slice own_kv[RT_POL_MAX_KEYS];
} rt_pol_span;

/* Called for each value found; `on_span` is true for a span attribute, false for a resource
 * attribute. Returns true to stop the visit ("matched"). */
typedef bool (*rt_pol_value_fn)(const void *arg, const rt_otlp_value *val, bool on_span);

/* Look key `k` up on span `ps` as `scope` says and offer each value found (array elements one
 * by one) to `fn(arg, ...)`, span before resource. Returns true as soon as `fn` does, false
 * when every value was offered. Malformed attribute bytes are treated as absent (the request
 * was validated on receipt). Allocates nothing (but the resource index's copy when a new
 * resource is first looked into). */
bool rt_pol_attr_visit(rt_pol_span *ps, rt_pol_scope scope, const rt_pol_key *k, rt_pol_value_fn fn,
                       const void *arg);

/* The per-trace "some value matched" byte of the attribute policies: set once `fn` accepts a
 * value of `k` under `scope`; once set, later spans are not looked at. */
static inline void rt_pol_match_observe(uint8_t *hit, rt_pol_span *ps, rt_pol_scope scope,
                                        const rt_pol_key *k, rt_pol_value_fn fn, const void *arg)
{
    if (*hit == 0 && rt_pol_attr_visit(ps, scope, k, fn, arg)) {
        *hit = 1;
    }
}

/* ---- regular expressions ------------------------------------------------------------------- */

/* Compile `pattern` the way string_attribute reads it: POSIX extended (REG_EXTENDED |
 * REG_NOSUB), unanchored, with the RE2 shorthands \d \D \w \W \s \S outside brackets and a
 * leading (?i) translated. Returns 0, or -1 with regerror's text in `why` (re is then not
 * compiled and must not be freed). */
int rt_pol_regex_compile(regex_t *re, const char *pattern, char *why, size_t cap);

/* Does `re` match somewhere in the bytes of `s` (embedded NULs are part of the subject)? */
bool rt_pol_regex_match(const regex_t *re, rt_pb_slice s);

/* ---- string value sets --------------------------------------------------------------------- */

/* The `values` of string_attribute (and of a span_filter entry), ready to match. */
typedef struct rt_pol_strset {
    const rt_cfg_strlist *values; /* ref: owned by the policy config, must not move */
    bool regex;
    size_t *lens; /* owned: strlen of each value */
    regex_t *res; /* owned: compiled values when `regex` (n_res of them) */
    size_t n_res;
} rt_pol_strset;

/* Prepare `s` (zeroed) for `values`. An empty list is an error ("values: at least one value is
 * required", on the line of `list`); a bad regex is reported as "values[i]: bad regular
 * expression ..." on the line of item i of `list` (the YAML sequence node, may be NULL), with
 * `path` as the key path. Returns 0, or -1 after reporting every error. `s` must be released
 * with rt_pol_strset_free either way. */
int rt_pol_strset_init(rt_pol_strset *s, const rt_cfg_strlist *values, bool regex, rt_cfg_ctx *ctx,
                       const rt_cfg_node *list, const char *path);
void rt_pol_strset_free(rt_pol_strset *s);

/* string_attribute's comparison: only string values; an empty span value never matches; empty
 * strings in `values` are ignored for exact matching; regexes match unanchored. */
bool rt_pol_strset_match(const rt_pol_strset *s, const rt_otlp_value *val, bool on_span);

/* ---- numeric ranges ------------------------------------------------------------------------ */

/* [min_value, max_value] with OTel's rule that 0 means "no bound". */
typedef struct rt_pol_range {
    bool has_lo, has_hi;
    int64_t lo, hi;
} rt_pol_range;

static inline rt_pol_range rt_pol_range_make(int64_t min_value, int64_t max_value)
{
    rt_pol_range r = {min_value != 0, max_value != 0, min_value, max_value};
    return r;
}

/* A range that no value can satisfy (both bounds set, lo > hi). */
static inline bool rt_pol_range_empty(const rt_pol_range *r)
{
    return r->has_lo && r->has_hi && r->lo > r->hi;
}

static inline bool rt_pol_range_int(const rt_pol_range *r, int64_t x)
{
    return (!r->has_lo || x >= r->lo) && (!r->has_hi || x <= r->hi);
}

/* NaN is in no range. */
static inline bool rt_pol_range_double(const rt_pol_range *r, double x)
{
    return x == x && (!r->has_lo || x >= (double)r->lo) && (!r->has_hi || x <= (double)r->hi);
}

/* An int or double value in range (other types never match). */
bool rt_pol_range_value(const rt_pol_range *r, const rt_otlp_value *val);

/* ---- span filter (span_count.span_filter) -------------------------------------------------- */

typedef struct rt_pol_span_filter rt_pol_span_filter;

/* An RT_CFG_CUSTOM parse callback: parse the span_filter block `node` at `path` into a new
 * filter stored at `field` (an rt_pol_span_filter *; a previous one is freed). Schema:
 *     name_pattern: <regex on the span name>         (optional)
 *     attributes:                                     (optional list; all must match)
 *       - key: <attribute key>
 *         values: [..]  + use_regex: bool             (string values), or
 *         min_value / max_value: int64 (0 = unbounded) (int or double values), or
 *         bool_value: bool
 * Exactly one of values, min_value/max_value, bool_value per entry; at least one of
 * name_pattern and attributes. Every error names its line and key path. Returns 0 or -1. */
int rt_pol_span_filter_cfg_parse(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path,
                                 void *field);
/* The matching RT_CFG_CUSTOM free callback (tolerates NULL and half-built filters). */
void rt_pol_span_filter_cfg_free(void *field);

/* Does span `v` pass `f`: name_pattern (if any) matches its name, and every attribute entry
 * matches a value of its key (span attributes, then the span's resource; arrays expanded as
 * above)? Allocates nothing (regex caveat above). */
bool rt_pol_span_filter_match(const rt_pol_span_filter *f, rt_pol_span *ps);

/* Register the filter's attribute keys (see rt_pol_keys_add). */
void rt_pol_span_filter_keys(rt_pol_span_filter *f, rt_pol_keys *reg);

#endif
