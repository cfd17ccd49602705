/* policy_match.c - matching helpers of the attribute policies and span_count's span_filter:
 * scoped attribute lookup with array expansion, RE2-flavoured POSIX regexes, string value sets,
 * numeric ranges, and the span filter's parser and matcher (see policy_match.h). */
#include "policy_match.h"

#include "alloc.h"
#include "buf.h"

#include <stdlib.h>
#include <string.h>

const char *const rt_pol_scope_choices[] = {"any", "span", "root", "resource", NULL};

/* ---- the attribute visitor ----------------------------------------------------------------- */

/* Offer one attribute value: itself, or each scalar element when it is an array. */
static bool offer(const rt_otlp_value *val, bool on_span, rt_pol_value_fn fn, const void *arg)
{
    if (val->type != RT_OTLP_VAL_ARRAY) {
        return fn(arg, val, on_span);
    }
    rt_otlp_array_iter it;
    rt_otlp_value el;
    rt_otlp_array_iter_init(&it, val->s.p, val->s.len);
    /* A malformed element ends the walk: the rest of the array counts as absent. */
    while (rt_otlp_array_next(&it, &el) == 1) {
        if (el.type == RT_OTLP_VAL_ARRAY || el.type == RT_OTLP_VAL_KVLIST) {
            continue; /* nested containers are not searched */
        }
        if (fn(arg, &el, on_span)) {
            return true;
        }
    }
    return false;
}

void rt_pol_keys_add(rt_pol_keys *reg, rt_pol_key *k)
{
    k->id = rt_otlp_keyset_add(reg, (const uint8_t *)k->s, k->len);
}

void rt_pol_res_index_free(rt_pol_res_index *r)
{
    free(r->bytes);
    memset(r, 0, sizeof *r);
}

/* The engine's resource index, made to describe ps's resource (an absent or empty resource
 * has no attributes: false). */
static bool res_index(rt_pol_span *ps)
{
    const rt_otlp_span_view *v = ps->v;
    rt_pol_res_index *r = ps->res;
    if (v->resource.p == NULL || v->resource.len == 0) {
        return false;
    }
    if (ps->res_checked) {
        return true;
    }
    ps->res_checked = true;
    if (r->len == v->resource.len && memcmp(r->bytes, v->resource.p, r->len) == 0) {
        return true;
    }
    if (v->resource.len > r->cap) {
        free(r->bytes);
        r->cap = v->resource.len;
        r->bytes = rt_malloc(r->cap);
    }
    memcpy(r->bytes, v->resource.p, v->resource.len);
    r->len = v->resource.len;
    /* A malformed list keeps what was found before the bad bytes, as a key-by-key lookup
     * would; the request was validated on receipt anyway. */
    rt_otlp_attr_index(r->bytes, r->len, RT_OTLP_RESOURCE_ATTRS, ps->keys, r->kv);
    return true;
}

/* Look k up in one attribute list: through the index when k is registered, else key by key. */
static bool lookup(rt_pol_span *ps, bool on_span, const rt_pol_key *k, rt_otlp_attr *a)
{
    const rt_otlp_span_view *v = ps->v;
    if (k->id < 0) {
        return on_span ? rt_otlp_attr_find(v->span.p, v->span.len, RT_OTLP_SPAN_ATTRS, k->s, k->len,
                                           a) == 1
                       : v->resource.p != NULL &&
                             rt_otlp_attr_find(v->resource.p, v->resource.len,
                                               RT_OTLP_RESOURCE_ATTRS, k->s, k->len, a) == 1;
    }
    rt_pb_slice kv;
    if (on_span) {
        if (ps->span_kv == NULL) {
            rt_otlp_attr_index(v->span.p, v->span.len, RT_OTLP_SPAN_ATTRS, ps->keys, ps->own_kv);
            ps->span_kv = ps->own_kv;
        }
        kv = ps->span_kv[k->id];
    } else {
        if (!res_index(ps)) {
            return false;
        }
        kv = ps->res->kv[k->id];
    }
    return kv.p != NULL && rt_otlp_keyvalue_decode(kv.p, kv.len, a) == 0;
}

bool rt_pol_attr_visit(rt_pol_span *ps, rt_pol_scope scope, const rt_pol_key *k, rt_pol_value_fn fn,
                       const void *arg)
{
    const rt_otlp_span_view *v = ps->v;
    rt_otlp_attr a;
    if (scope == RT_POL_SCOPE_ROOT && v->parent_span_id.len != 0) {
        return false;
    }
    if (scope != RT_POL_SCOPE_RESOURCE && v->n_attributes > 0 && lookup(ps, true, k, &a) &&
        offer(&a.value, true, fn, arg)) {
        return true;
    }
    if (scope == RT_POL_SCOPE_SPAN || scope == RT_POL_SCOPE_ROOT) {
        return false;
    }
    return lookup(ps, false, k, &a) && offer(&a.value, false, fn, arg);
}

/* ---- regular expressions ------------------------------------------------------------------- */

/* RE2 -> POSIX ERE for the common shorthands (outside bracket expressions). Returns a new
 * string; sets *icase for a leading "(?i)". */
static char *translate_regex(const char *src, bool *icase)
{
    rt_buf b = RT_BUF_INIT;
    *icase = false;
    if (strncmp(src, "(?i)", 4) == 0) {
        *icase = true;
        src += 4;
    }
    bool in_bracket = false;
    for (const char *s = src; *s != '\0'; s++) {
        if (in_bracket) {
            if (*s == ']') {
                in_bracket = false;
            }
            rt_buf_append_byte(&b, (uint8_t)*s);
            continue;
        }
        if (*s == '[') {
            in_bracket = true;
            rt_buf_append_byte(&b, (uint8_t)*s);
            /* A ']' right after '[' or '[^' is a literal member. */
            if (s[1] == '^') {
                rt_buf_append_byte(&b, (uint8_t) * ++s);
            }
            if (s[1] == ']') {
                rt_buf_append_byte(&b, (uint8_t) * ++s);
            }
            continue;
        }
        if (*s == '\\' && s[1] != '\0') {
            const char *rep = NULL;
            switch (s[1]) {
            case 'd':
                rep = "[0-9]";
                break;
            case 'D':
                rep = "[^0-9]";
                break;
            case 'w':
                rep = "[[:alnum:]_]";
                break;
            case 'W':
                rep = "[^[:alnum:]_]";
                break;
            case 's':
                rep = "[[:space:]]";
                break;
            case 'S':
                rep = "[^[:space:]]";
                break;
            default:
                break;
            }
            if (rep != NULL) {
                rt_buf_append_str(&b, rep);
            } else {
                rt_buf_append(&b, s, 2);
            }
            s++;
            continue;
        }
        rt_buf_append_byte(&b, (uint8_t)*s);
    }
    rt_buf_append_byte(&b, '\0');
    return (char *)rt_buf_steal(&b, NULL);
}

int rt_pol_regex_compile(regex_t *re, const char *pattern, char *why, size_t cap)
{
    bool icase;
    char *pat = translate_regex(pattern, &icase);
    int err = regcomp(re, pat, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0));
    free(pat);
    if (err != 0) {
        regerror(err, re, why, cap);
        return -1;
    }
    return 0;
}

/* Does any of res[0..n) match somewhere in `s`? The subject is copied once for all of them. */
static bool regex_match_any(const regex_t *res, size_t n, rt_pb_slice s)
{
    /* regexec wants a NUL-terminated string (sanitizer interceptors strlen() it even with
     * REG_STARTEND), and the value sits inside the request without one: copy it to the stack,
     * or to the heap when long (rare; glibc's regexec allocates anyway). REG_STARTEND keeps
     * embedded NUL bytes part of the subject. */
    char small[512];
    char *p = s.len < sizeof small ? small : rt_malloc(s.len + 1);
    if (s.len > 0) {
        memcpy(p, s.p, s.len);
    }
    p[s.len] = '\0';
    bool hit = false;
    for (size_t i = 0; i < n && !hit; i++) {
        regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)s.len};
        hit = regexec(&res[i], p, 1, &m, REG_STARTEND) == 0;
    }
    if (p != small) {
        free(p);
    }
    return hit;
}

bool rt_pol_regex_match(const regex_t *re, rt_pb_slice s)
{
    return regex_match_any(re, 1, s);
}

/* ---- string value sets --------------------------------------------------------------------- */

int rt_pol_strset_init(rt_pol_strset *s, const rt_cfg_strlist *values, bool regex, rt_cfg_ctx *ctx,
                       const rt_cfg_node *list, const char *path)
{
    s->values = values;
    s->regex = regex;
    if (values->len == 0) {
        rt_cfg_error(ctx, rt_cfg_node_line(list), path, "values: at least one value is required");
        return -1;
    }
    s->lens = rt_calloc(values->len, sizeof *s->lens);
    for (size_t i = 0; i < values->len; i++) {
        s->lens[i] = strlen(values->items[i]);
    }
    if (!regex) {
        return 0;
    }
    s->res = rt_calloc(values->len, sizeof *s->res);
    int rc = 0;
    for (size_t i = 0; i < values->len; i++) {
        char why[160];
        if (rt_pol_regex_compile(&s->res[s->n_res], values->items[i], why, sizeof why) != 0) {
            int line = list != NULL && list->kind == RT_CFG_NODE_SEQUENCE && i < list->n
                           ? list->items[i]->line
                           : rt_cfg_node_line(list);
            rt_cfg_error(ctx, line, path, "values[%zu]: bad regular expression \"%s\": %s", i,
                         values->items[i], why);
            rc = -1;
            continue;
        }
        s->n_res++;
    }
    return rc;
}

void rt_pol_strset_free(rt_pol_strset *s)
{
    for (size_t i = 0; i < s->n_res; i++) {
        regfree(&s->res[i]);
    }
    free(s->res);
    free(s->lens);
    memset(s, 0, sizeof *s);
}

bool rt_pol_strset_match(const rt_pol_strset *s, const rt_otlp_value *val, bool on_span)
{
    if (val->type != RT_OTLP_VAL_STRING || (on_span && val->s.len == 0)) {
        return false;
    }
    if (s->regex) {
        return regex_match_any(s->res, s->n_res, val->s);
    }
    for (size_t i = 0; i < s->values->len; i++) {
        size_t n = s->lens[i];
        if (n > 0 && val->s.len == n && memcmp(val->s.p, s->values->items[i], n) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- numeric ranges ------------------------------------------------------------------------ */

bool rt_pol_range_value(const rt_pol_range *r, const rt_otlp_value *val)
{
    if (val->type == RT_OTLP_VAL_INT) {
        return rt_pol_range_int(r, val->i);
    }
    if (val->type == RT_OTLP_VAL_DOUBLE) {
        return rt_pol_range_double(r, val->d);
    }
    return false;
}

/* ---- span filter --------------------------------------------------------------------------- */

typedef enum entry_kind {
    ENTRY_NONE = 0,
    ENTRY_VALUES,
    ENTRY_RANGE,
    ENTRY_BOOL,
} entry_kind;

/* One `attributes` entry: the table's keys, then what is derived from them. */
typedef struct filter_entry {
    char *key;
    rt_cfg_strlist values;
    bool use_regex;
    int64_t min_value;
    int64_t max_value;
    bool bool_value;
    /* derived */
    entry_kind kind;
    rt_pol_key k;
    rt_pol_strset set; /* ENTRY_VALUES */
    rt_pol_range range;
} filter_entry;

struct rt_pol_span_filter {
    bool has_name;
    regex_t name_re;       /* when has_name */
    filter_entry *entries; /* owned array */
    size_t n_entries;
};

static const rt_cfg_field entry_fields[] = {
    {.key = "key",
     .type = RT_CFG_STRING,
     .offset = offsetof(filter_entry, key),
     .flags = RT_CFG_F_REQUIRED,
     .help = "Attribute key looked up on the span, then on its resource."},
    {.key = "values",
     .type = RT_CFG_STRLIST,
     .offset = offsetof(filter_entry, values),
     .help = "String values that match (exact, or regexes with use_regex)."},
    {.key = "use_regex",
     .type = RT_CFG_BOOL,
     .offset = offsetof(filter_entry, use_regex),
     .def = "false",
     .help = "Treat values as regular expressions (string_attribute's dialect)."},
    {.key = "min_value",
     .type = RT_CFG_INT64,
     .offset = offsetof(filter_entry, min_value),
     .def = "0",
     .help = "Inclusive lower bound for an int or double value; 0 = none."},
    {.key = "max_value",
     .type = RT_CFG_INT64,
     .offset = offsetof(filter_entry, max_value),
     .def = "0",
     .help = "Inclusive upper bound for an int or double value; 0 = none."},
    {.key = "bool_value",
     .type = RT_CFG_BOOL,
     .offset = offsetof(filter_entry, bool_value),
     .def = "false",
     .help = "The boolean value that matches."},
    {0},
};

/* The span_filter block as written. */
typedef struct filter_block {
    char *name_pattern;
    const rt_cfg_node *attributes; /* ref into the document, only while parsing */
} filter_block;

static int store_node(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path, void *field)
{
    (void)ctx;
    (void)path;
    *(const rt_cfg_node **)field = node;
    return 0;
}

static const rt_cfg_field filter_fields[] = {
    {.key = "name_pattern",
     .type = RT_CFG_STRING,
     .offset = offsetof(filter_block, name_pattern),
     .help = "Regular expression the span name must match (unanchored; string_attribute's "
             "dialect)."},
    {.key = "attributes",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(filter_block, attributes),
     .parse = store_node,
     .type_name = "list of {key, values | min_value/max_value | bool_value}",
     .help = "Attribute conditions the span must all meet."},
    {0},
};

static void filter_free(rt_pol_span_filter *f)
{
    if (f == NULL) {
        return;
    }
    if (f->has_name) {
        regfree(&f->name_re);
    }
    for (size_t i = 0; i < f->n_entries; i++) {
        rt_pol_strset_free(&f->entries[i].set);
        rt_cfg_free_struct(entry_fields, &f->entries[i]);
    }
    free(f->entries);
    free(f);
}

void rt_pol_span_filter_cfg_free(void *field)
{
    rt_pol_span_filter **pf = field;
    filter_free(*pf);
    *pf = NULL;
}

/* Which kind of condition an entry key belongs to (ENTRY_NONE for key and use_regex). */
static entry_kind kind_of_key(const char *k)
{
    if (strcmp(k, "values") == 0) {
        return ENTRY_VALUES;
    }
    if (strcmp(k, "min_value") == 0 || strcmp(k, "max_value") == 0) {
        return ENTRY_RANGE;
    }
    if (strcmp(k, "bool_value") == 0) {
        return ENTRY_BOOL;
    }
    return ENTRY_NONE;
}

/* Check and derive entry `e` (table already applied from mapping `node`). Returns 0 or -1. */
static int prepare_entry(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path,
                         filter_entry *e)
{
    const char *first_key = NULL;
    if (e->key[0] == '\0') {
        rt_cfg_error(ctx, rt_cfg_node_line(rt_cfg_node_get(node, "key")), path,
                     "key: must not be empty");
        return -1;
    }
    e->k = (rt_pol_key){e->key, strlen(e->key), -1};
    for (size_t i = 0; i < node->n; i++) {
        const rt_cfg_pair *pr = &node->pairs[i];
        entry_kind k = kind_of_key(pr->key);
        if (k == ENTRY_NONE) {
            continue;
        }
        if (e->kind != ENTRY_NONE && k != e->kind) {
            rt_cfg_error(ctx, pr->line, path,
                         "`%s` cannot be combined with `%s`: an entry takes exactly one of "
                         "values, min_value/max_value or bool_value",
                         pr->key, first_key);
            return -1;
        }
        if (e->kind == ENTRY_NONE) {
            e->kind = k;
            first_key = pr->key;
        }
    }
    if (e->kind == ENTRY_NONE) {
        rt_cfg_error(ctx, node->line, path,
                     "attribute \"%s\" needs one of values, min_value/max_value or bool_value",
                     e->key);
        return -1;
    }
    const rt_cfg_node *ur = rt_cfg_node_get(node, "use_regex");
    if (ur != NULL && e->kind != ENTRY_VALUES) {
        rt_cfg_error(ctx, rt_cfg_node_line(ur), path, "use_regex only applies to `values`");
        return -1;
    }
    switch (e->kind) {
    case ENTRY_VALUES:
        return rt_pol_strset_init(&e->set, &e->values, e->use_regex, ctx,
                                  rt_cfg_node_get(node, "values"), path);
    case ENTRY_RANGE:
        e->range = rt_pol_range_make(e->min_value, e->max_value);
        if (rt_pol_range_empty(&e->range)) {
            rt_cfg_error(ctx, rt_cfg_node_line(rt_cfg_node_get(node, "max_value")), path,
                         "max_value (%lld) is less than min_value (%lld): no value would match",
                         (long long)e->max_value, (long long)e->min_value);
            return -1;
        }
        return 0;
    default:
        return 0;
    }
}

/* Parse the `attributes` list into f->entries. Returns 0 or -1 after reporting every error. */
static int parse_entries(rt_cfg_ctx *ctx, const rt_cfg_node *seq, const char *path,
                         rt_pol_span_filter *f)
{
    char *ap = rt_sprintf("%s.attributes", path);
    unsigned before = ctx->n_errors;
    int rc = -1;
    if (seq->kind != RT_CFG_NODE_SEQUENCE) {
        rt_cfg_error(ctx, seq->line, ap, "expected a list of attribute conditions, got a %s",
                     seq->kind == RT_CFG_NODE_SCALAR && seq->is_null ? "null"
                                                                     : rt_cfg_node_kind_name(seq));
        goto fail;
    }
    if (seq->n == 0) {
        rt_cfg_error(ctx, seq->line, ap, "at least one attribute condition is required");
        goto fail;
    }
    /* Allocated once at its final size: each entry's strset points at its own `values`. */
    f->entries = rt_calloc(seq->n, sizeof *f->entries);
    f->n_entries = seq->n;
    for (size_t i = 0; i < seq->n; i++) {
        filter_entry *e = &f->entries[i];
        char *ep = rt_sprintf("%s[%zu]", ap, i);
        rt_cfg_set_defaults(entry_fields, e);
        if (rt_cfg_apply(ctx, entry_fields, seq->items[i], ep, e) == 0) {
            prepare_entry(ctx, seq->items[i], ep, e);
        }
        free(ep);
    }
    rc = ctx->n_errors > before ? -1 : 0;
fail:
    free(ap);
    return rc;
}

int rt_pol_span_filter_cfg_parse(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path,
                                 void *field)
{
    rt_pol_span_filter **pf = field;
    rt_pol_span_filter *f = rt_calloc(1, sizeof *f);
    filter_block fb;
    memset(&fb, 0, sizeof fb);
    unsigned before = ctx->n_errors;
    int rc = -1;

    rt_pol_span_filter_cfg_free(pf);
    rt_cfg_set_defaults(filter_fields, &fb);
    if (rt_cfg_apply(ctx, filter_fields, node, path, &fb) != 0) {
        goto fail;
    }
    if (fb.name_pattern == NULL && fb.attributes == NULL) {
        rt_cfg_error(ctx, rt_cfg_node_line(node), path,
                     "needs name_pattern, attributes or both (an empty filter would count every "
                     "span: leave span_filter out for that)");
        goto fail;
    }
    if (fb.name_pattern != NULL) {
        const rt_cfg_node *np = rt_cfg_node_get(node, "name_pattern");
        char why[160];
        if (fb.name_pattern[0] == '\0') {
            rt_cfg_error(ctx, rt_cfg_node_line(np), path, "name_pattern: must not be empty");
        } else if (rt_pol_regex_compile(&f->name_re, fb.name_pattern, why, sizeof why) != 0) {
            rt_cfg_error(ctx, rt_cfg_node_line(np), path,
                         "name_pattern: bad regular expression \"%s\": %s", fb.name_pattern, why);
        } else {
            f->has_name = true;
        }
    }
    if (fb.attributes != NULL) {
        parse_entries(ctx, fb.attributes, path, f);
    }
    if (ctx->n_errors > before) {
        goto fail;
    }
    *pf = f;
    f = NULL;
    rc = 0;
fail:
    filter_free(f);
    rt_cfg_free_struct(filter_fields, &fb);
    return rc;
}

static bool entry_value(const void *arg, const rt_otlp_value *val, bool on_span)
{
    const filter_entry *e = arg;
    switch (e->kind) {
    case ENTRY_VALUES:
        return rt_pol_strset_match(&e->set, val, on_span);
    case ENTRY_RANGE:
        return rt_pol_range_value(&e->range, val);
    case ENTRY_BOOL:
        return val->type == RT_OTLP_VAL_BOOL && (val->b != 0) == e->bool_value;
    case ENTRY_NONE:
        break;
    }
    return false;
}

void rt_pol_span_filter_keys(rt_pol_span_filter *f, rt_pol_keys *reg)
{
    for (size_t i = 0; i < f->n_entries; i++) {
        rt_pol_keys_add(reg, &f->entries[i].k);
    }
}

bool rt_pol_span_filter_match(const rt_pol_span_filter *f, rt_pol_span *ps)
{
    if (f->has_name && !rt_pol_regex_match(&f->name_re, ps->v->name)) {
        return false;
    }
    for (size_t i = 0; i < f->n_entries; i++) {
        const filter_entry *e = &f->entries[i];
        if (!rt_pol_attr_visit(ps, RT_POL_SCOPE_ANY, &e->k, entry_value, e)) {
            return false;
        }
    }
    return true;
}
