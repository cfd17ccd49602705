/* config.c - YAML config loading into a node tree and table-driven application (see config.h). */
#include "config.h"

#include "alloc.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* Deeper nesting than this is refused, so a hostile file cannot exhaust the stack. */
#define MAX_DEPTH 64
/* Errors kept in ctx->errors; later ones are only counted. */
#define MAX_KEPT_ERRORS 100

/* ---- errors -------------------------------------------------------------------------------- */

void rt_cfg_ctx_init(rt_cfg_ctx *ctx, const char *file)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->file = file;
    rt_buf_init(&ctx->errors);
}

void rt_cfg_ctx_free(rt_cfg_ctx *ctx)
{
    rt_buf_free(&ctx->errors);
    ctx->n_errors = 0;
    ctx->first_error[0] = '\0';
}

void rt_cfg_error(rt_cfg_ctx *ctx, int line, const char *path, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char full[sizeof ctx->first_error];
    char where[32] = "";
    if (line > 0) {
        snprintf(where, sizeof where, ":%d", line);
    }
    if (path != NULL && path[0] != '\0') {
        snprintf(full, sizeof full, "%s%s: %s: %s", ctx->file ? ctx->file : "<config>", where, path,
                 msg);
    } else {
        snprintf(full, sizeof full, "%s%s: %s", ctx->file ? ctx->file : "<config>", where, msg);
    }
    if (ctx->n_errors == 0) {
        snprintf(ctx->first_error, sizeof ctx->first_error, "%s", full);
    }
    if (ctx->n_errors < MAX_KEPT_ERRORS) {
        rt_buf_append_str(&ctx->errors, full);
        rt_buf_append_byte(&ctx->errors, '\n');
    }
    ctx->n_errors++;
}

/* ---- the document -------------------------------------------------------------------------- */

typedef struct anchor {
    char *name;
    rt_cfg_node *node;
} anchor;

struct rt_cfg_doc {
    rt_cfg_node *root;
    rt_cfg_node **all; /* every node, for freeing (aliases share nodes) */
    size_t nall, capall;
    anchor *anchors;
    size_t nanchors, capanchors;
};

typedef struct loader {
    yaml_parser_t parser;
    rt_cfg_doc *doc;
    rt_cfg_ctx *ctx;
} loader;

static rt_cfg_node *node_new(rt_cfg_doc *doc, rt_cfg_node_kind kind, int line)
{
    rt_cfg_node *n = rt_calloc(1, sizeof *n);
    n->kind = kind;
    n->line = line;
    if (doc->nall == doc->capall) {
        doc->capall = doc->capall ? doc->capall * 2 : 32;
        doc->all = rt_realloc(doc->all, doc->capall * sizeof *doc->all);
    }
    doc->all[doc->nall++] = n;
    return n;
}

static void node_free(rt_cfg_node *n)
{
    free(n->scalar);
    free(n->items);
    if (n->pairs != NULL) {
        for (size_t i = 0; i < n->n; i++) {
            free((char *)n->pairs[i].key);
        }
        free(n->pairs);
    }
    free(n);
}

void rt_cfg_doc_free(rt_cfg_doc *doc)
{
    if (doc == NULL) {
        return;
    }
    for (size_t i = 0; i < doc->nall; i++) {
        node_free(doc->all[i]);
    }
    free(doc->all);
    for (size_t i = 0; i < doc->nanchors; i++) {
        free(doc->anchors[i].name);
    }
    free(doc->anchors);
    free(doc);
}

const rt_cfg_node *rt_cfg_doc_root(const rt_cfg_doc *doc)
{
    return doc ? doc->root : NULL;
}

static void add_anchor(rt_cfg_doc *doc, const yaml_char_t *name, rt_cfg_node *node)
{
    if (name == NULL) {
        return;
    }
    if (doc->nanchors == doc->capanchors) {
        doc->capanchors = doc->capanchors ? doc->capanchors * 2 : 8;
        doc->anchors = rt_realloc(doc->anchors, doc->capanchors * sizeof *doc->anchors);
    }
    doc->anchors[doc->nanchors].name = rt_strdup((const char *)name);
    doc->anchors[doc->nanchors].node = node;
    doc->nanchors++;
}

static rt_cfg_node *find_anchor(rt_cfg_doc *doc, const char *name)
{
    /* Search backwards: a redefined anchor refers to its latest definition. */
    for (size_t i = doc->nanchors; i > 0; i--) {
        if (strcmp(doc->anchors[i - 1].name, name) == 0) {
            return doc->anchors[i - 1].node;
        }
    }
    return NULL;
}

static void syntax_error(loader *L)
{
    yaml_parser_t *p = &L->parser;
    int line = (int)p->problem_mark.line + 1;
    if (p->error == YAML_READER_ERROR) {
        rt_cfg_error(L->ctx, 0, NULL, "YAML error: %s at byte %zu",
                     p->problem ? p->problem : "unreadable input", p->problem_offset);
    } else if (p->context != NULL) {
        rt_cfg_error(L->ctx, line, NULL, "YAML syntax error: %s (%s on line %d)",
                     p->problem ? p->problem : "invalid YAML", p->context,
                     (int)p->context_mark.line + 1);
    } else {
        rt_cfg_error(L->ctx, line, NULL, "YAML syntax error: %s",
                     p->problem ? p->problem : "invalid YAML");
    }
}

/* Fetch the next event into *ev; on a syntax error report it and return -1. */
static int next_event(loader *L, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&L->parser, ev)) {
        syntax_error(L);
        return -1;
    }
    return 0;
}

static bool scalar_is_null(const yaml_event_t *ev)
{
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    const char *v = (const char *)ev->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Build the node that starts with event `ev` (consumed here, including everything up to the
 * matching end event). Returns the node or NULL after reporting an error. */
static rt_cfg_node *build_node(loader *L, yaml_event_t *ev, int depth)
{
    rt_cfg_doc *doc = L->doc;
    int line = (int)ev->start_mark.line + 1;
    rt_cfg_node *n = NULL;

    if (depth > MAX_DEPTH) {
        rt_cfg_error(L->ctx, line, NULL, "nesting deeper than %d levels", MAX_DEPTH);
        yaml_event_delete(ev);
        return NULL;
    }
    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        n = find_anchor(doc, (const char *)ev->data.alias.anchor);
        if (n == NULL) {
            rt_cfg_error(L->ctx, line, NULL, "unknown alias *%s", ev->data.alias.anchor);
        }
        yaml_event_delete(ev);
        return n;
    }
    case YAML_SCALAR_EVENT:
        n = node_new(doc, RT_CFG_NODE_SCALAR, line);
        n->scalar = rt_strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        n->is_null = scalar_is_null(ev);
        add_anchor(doc, ev->data.scalar.anchor, n);
        yaml_event_delete(ev);
        return n;
    case YAML_SEQUENCE_START_EVENT: {
        n = node_new(doc, RT_CFG_NODE_SEQUENCE, line);
        add_anchor(doc, ev->data.sequence_start.anchor, n);
        yaml_event_delete(ev);
        size_t cap = 0;
        for (;;) {
            yaml_event_t item;
            if (next_event(L, &item) != 0) {
                return NULL;
            }
            if (item.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&item);
                return n;
            }
            rt_cfg_node *child = build_node(L, &item, depth + 1);
            if (child == NULL) {
                return NULL;
            }
            if (n->n == cap) {
                cap = cap ? cap * 2 : 4;
                n->items = rt_realloc(n->items, cap * sizeof *n->items);
            }
            n->items[n->n++] = child;
        }
    }
    case YAML_MAPPING_START_EVENT: {
        n = node_new(doc, RT_CFG_NODE_MAPPING, line);
        add_anchor(doc, ev->data.mapping_start.anchor, n);
        yaml_event_delete(ev);
        size_t cap = 0;
        for (;;) {
            yaml_event_t kev;
            if (next_event(L, &kev) != 0) {
                return NULL;
            }
            if (kev.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&kev);
                return n;
            }
            int kline = (int)kev.start_mark.line + 1;
            rt_cfg_node *k = build_node(L, &kev, depth + 1);
            if (k == NULL) {
                return NULL;
            }
            if (k->kind != RT_CFG_NODE_SCALAR || k->is_null) {
                rt_cfg_error(L->ctx, kline, NULL, "mapping keys must be strings, got a %s",
                             k->is_null ? "null" : rt_cfg_node_kind_name(k));
                return NULL;
            }
            yaml_event_t vev;
            if (next_event(L, &vev) != 0) {
                return NULL;
            }
            rt_cfg_node *v = build_node(L, &vev, depth + 1);
            if (v == NULL) {
                return NULL;
            }
            if (n->n == cap) {
                cap = cap ? cap * 2 : 4;
                n->pairs = rt_realloc(n->pairs, cap * sizeof *n->pairs);
            }
            n->pairs[n->n].key = rt_strdup(k->scalar);
            n->pairs[n->n].line = kline;
            n->pairs[n->n].value = v;
            n->n++;
        }
    }
    default:
        rt_cfg_error(L->ctx, line, NULL, "unexpected YAML event %d", (int)ev->type);
        yaml_event_delete(ev);
        return NULL;
    }
}

/* Drive the parser over a whole stream: at most one document whose root is a mapping. */
static rt_cfg_doc *load(loader *L)
{
    yaml_event_t ev;
    L->doc = rt_calloc(1, sizeof *L->doc);
    if (next_event(L, &ev) != 0) { /* STREAM_START */
        goto fail;
    }
    yaml_event_delete(&ev);
    if (next_event(L, &ev) != 0) {
        goto fail;
    }
    if (ev.type == YAML_STREAM_END_EVENT) { /* empty file */
        yaml_event_delete(&ev);
        L->doc->root = node_new(L->doc, RT_CFG_NODE_MAPPING, 1);
        return L->doc;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    if (next_event(L, &ev) != 0) {
        goto fail;
    }
    rt_cfg_node *root = build_node(L, &ev, 0);
    if (root == NULL) {
        goto fail;
    }
    if (root->kind == RT_CFG_NODE_SCALAR && root->is_null) {
        root = node_new(L->doc, RT_CFG_NODE_MAPPING, root->line);
    } else if (root->kind != RT_CFG_NODE_MAPPING) {
        rt_cfg_error(L->ctx, root->line, NULL, "the top level must be a mapping, got a %s",
                     rt_cfg_node_kind_name(root));
        goto fail;
    }
    if (next_event(L, &ev) != 0) { /* DOCUMENT_END */
        goto fail;
    }
    yaml_event_delete(&ev);
    if (next_event(L, &ev) != 0) {
        goto fail;
    }
    if (ev.type != YAML_STREAM_END_EVENT) {
        rt_cfg_error(L->ctx, (int)ev.start_mark.line + 1, NULL,
                     "only one YAML document is allowed per file");
        yaml_event_delete(&ev);
        goto fail;
    }
    yaml_event_delete(&ev);
    L->doc->root = root;
    return L->doc;
fail:
    rt_cfg_doc_free(L->doc);
    L->doc = NULL;
    return NULL;
}

rt_cfg_doc *rt_cfg_doc_load_file(rt_cfg_ctx *ctx, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        rt_cfg_error(ctx, 0, NULL, "cannot open: %s", strerror(errno));
        return NULL;
    }
    loader L = {.ctx = ctx};
    if (!yaml_parser_initialize(&L.parser)) {
        rt_log(RT_LOG_ERROR, "yaml_parser_initialize failed", "file=\"%s\"", path);
        abort(); /* only fails on out-of-memory */
    }
    yaml_parser_set_input_file(&L.parser, f);
    rt_cfg_doc *doc = load(&L);
    yaml_parser_delete(&L.parser);
    fclose(f);
    return doc;
}

rt_cfg_doc *rt_cfg_doc_load_string(rt_cfg_ctx *ctx, const char *text, size_t len)
{
    loader L = {.ctx = ctx};
    if (!yaml_parser_initialize(&L.parser)) {
        rt_log(RT_LOG_ERROR, "yaml_parser_initialize failed", "%s", "");
        abort();
    }
    yaml_parser_set_input_string(&L.parser, (const unsigned char *)text, len);
    rt_cfg_doc *doc = load(&L);
    yaml_parser_delete(&L.parser);
    return doc;
}

const rt_cfg_node *rt_cfg_node_get(const rt_cfg_node *map, const char *key)
{
    if (map == NULL || map->kind != RT_CFG_NODE_MAPPING) {
        return NULL;
    }
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->pairs[i].key, key) == 0) {
            return map->pairs[i].value;
        }
    }
    return NULL;
}

int rt_cfg_node_line(const rt_cfg_node *node)
{
    return node ? node->line : 0;
}

const char *rt_cfg_node_kind_name(const rt_cfg_node *node)
{
    if (node == NULL) {
        return "nothing";
    }
    switch (node->kind) {
    case RT_CFG_NODE_SCALAR:
        return "scalar";
    case RT_CFG_NODE_SEQUENCE:
        return "list";
    case RT_CFG_NODE_MAPPING:
        return "mapping";
    }
    return "?";
}

/* ---- scalar parsers ------------------------------------------------------------------------ */

/* Parse "<digits>[.<digits>]" at *pp (at least one digit in total). The integer part goes to
 * *ip (fails above UINT64_MAX), the fraction to *fp / *scale (extra digits beyond 18 are
 * dropped, which only truncates). Advances *pp. Returns 0 or -1. */
static int parse_decimal(const char **pp, uint64_t *ip, uint64_t *fp, uint64_t *scale)
{
    const char *p = *pp;
    unsigned __int128 iv = 0;
    uint64_t fv = 0, sc = 1;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        iv = iv * 10 + (unsigned)(*p - '0');
        if (iv > UINT64_MAX) {
            return -1;
        }
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (sc < 1000000000000000000ull) {
                fv = fv * 10 + (unsigned)(*p - '0');
                sc *= 10;
            }
            p++;
            digits++;
        }
    }
    if (digits == 0) {
        return -1;
    }
    *ip = (uint64_t)iv;
    *fp = fv;
    *scale = sc;
    *pp = p;
    return 0;
}

typedef struct unit {
    const char *name;
    uint64_t mult;
} unit;

/* Longer names first so "ms" wins over "m". */
static const unit duration_units[] = {
    {"ns", 1ull},
    {"us", 1000ull},
    {"\xc2\xb5s", 1000ull}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000ull}, /* U+03BC greek mu */
    {"ms", 1000000ull},
    {"s", 1000000000ull},
    {"m", 60ull * 1000000000ull},
    {"h", 3600ull * 1000000000ull},
    {NULL, 0},
};

int rt_cfg_parse_duration(const char *s, uint64_t *ns)
{
    if (s == NULL || s[0] == '\0') {
        return -1;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    const char *p = s;
    unsigned __int128 total = 0;
    while (*p != '\0') {
        uint64_t iv, fv, sc;
        if (parse_decimal(&p, &iv, &fv, &sc) != 0) {
            return -1;
        }
        const unit *u = NULL;
        size_t ulen = 0;
        for (const unit *c = duration_units; c->name != NULL; c++) {
            size_t l = strlen(c->name);
            if (strncmp(p, c->name, l) == 0 && l > ulen) {
                u = c;
                ulen = l;
            }
        }
        if (u == NULL) {
            return -1; /* missing or unknown unit */
        }
        p += ulen;
        total += (unsigned __int128)iv * u->mult + (unsigned __int128)fv * u->mult / sc;
        if (total > UINT64_MAX) {
            return -1;
        }
    }
    *ns = (uint64_t)total;
    return 0;
}

static const unit size_units[] = {
    {"b", 1ull},
    {"kb", 1000ull},
    {"mb", 1000ull * 1000},
    {"gb", 1000ull * 1000 * 1000},
    {"tb", 1000ull * 1000 * 1000 * 1000},
    {"kib", 1ull << 10},
    {"mib", 1ull << 20},
    {"gib", 1ull << 30},
    {"tib", 1ull << 40},
    {"ki", 1ull << 10},
    {"mi", 1ull << 20},
    {"gi", 1ull << 30},
    {"ti", 1ull << 40},
    {NULL, 0},
};

int rt_cfg_parse_size(const char *s, uint64_t *bytes)
{
    if (s == NULL) {
        return -1;
    }
    const char *p = s;
    uint64_t iv, fv, sc;
    if (parse_decimal(&p, &iv, &fv, &sc) != 0) {
        return -1;
    }
    uint64_t mult = 1;
    if (*p == ' ') {
        p++;
        if (*p == '\0') {
            return -1;
        }
    }
    if (*p != '\0') {
        const unit *u = NULL;
        for (const unit *c = size_units; c->name != NULL; c++) {
            if (strcasecmp(p, c->name) == 0) {
                u = c;
                break;
            }
        }
        if (u == NULL) {
            return -1;
        }
        mult = u->mult;
    }
    unsigned __int128 total = (unsigned __int128)iv * mult + (unsigned __int128)fv * mult / sc;
    if (total > UINT64_MAX) {
        return -1;
    }
    *bytes = (uint64_t)total;
    return 0;
}

int rt_cfg_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    for (int i = 0; yes[i] != NULL; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int rt_cfg_parse_int64(const char *s, int64_t *out)
{
    if (s == NULL || s[0] == '\0' || isspace((unsigned char)s[0])) {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int rt_cfg_parse_uint64(const char *s, uint64_t *out)
{
    /* strtoull accepts "-1" and wraps it; refuse any sign but '+'. */
    if (s == NULL || s[0] == '\0' || s[0] == '-' || isspace((unsigned char)s[0])) {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int rt_cfg_parse_double(const char *s, double *out)
{
    if (s == NULL || s[0] == '\0' || isspace((unsigned char)s[0])) {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE && fabs(v) > 1.0) {
        return -1; /* overflow; underflow to a tiny number is fine */
    }
    if (end == s || *end != '\0' || !isfinite(v)) {
        return -1;
    }
    *out = v;
    return 0;
}

const char *rt_cfg_format_duration(uint64_t ns, char *out, size_t cap)
{
    if (ns == 0) {
        snprintf(out, cap, "0s");
        return out;
    }
    /* Below one second use the largest unit that keeps an integer part, with a trimmed
     * fraction ("1.5ms"); from one second up, h/m/s components with zero ones left out. */
    char frac[32];
    if (ns < 1000000000ull) {
        uint64_t div = ns < 1000ull ? 1 : ns < 1000000ull ? 1000ull : 1000000ull;
        const char *u = div == 1 ? "ns" : div == 1000ull ? "us" : "ms";
        uint64_t ip = ns / div, fp = ns % div;
        frac[0] = '\0';
        if (fp != 0) {
            int width = div == 1000ull ? 3 : 6;
            snprintf(frac, sizeof frac, ".%0*llu", width, (unsigned long long)fp);
            size_t l = strlen(frac);
            while (frac[l - 1] == '0') {
                frac[--l] = '\0';
            }
        }
        snprintf(out, cap, "%llu%s%s", (unsigned long long)ip, frac, u);
        return out;
    }
    uint64_t h = ns / 3600000000000ull;
    uint64_t m = ns / 60000000000ull % 60;
    uint64_t sec = ns / 1000000000ull % 60;
    uint64_t fp = ns % 1000000000ull;
    size_t off = 0;
    out[0] = '\0';
    if (h != 0) {
        off +=
            (size_t)snprintf(out + off, off < cap ? cap - off : 0, "%lluh", (unsigned long long)h);
    }
    if (m != 0) {
        off +=
            (size_t)snprintf(out + off, off < cap ? cap - off : 0, "%llum", (unsigned long long)m);
    }
    if (sec != 0 || fp != 0) {
        frac[0] = '\0';
        if (fp != 0) {
            snprintf(frac, sizeof frac, ".%09llu", (unsigned long long)fp);
            size_t l = strlen(frac);
            while (frac[l - 1] == '0') {
                frac[--l] = '\0';
            }
        }
        snprintf(out + off, off < cap ? cap - off : 0, "%llu%ss", (unsigned long long)sec, frac);
    }
    return out;
}

/* ---- fields -------------------------------------------------------------------------------- */

typedef union value {
    const char *s; /* RT_CFG_STRING: borrowed from the text */
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    int e;
} value;

static const char *type_name(const rt_cfg_field *f)
{
    switch (f->type) {
    case RT_CFG_STRING:
        return "string";
    case RT_CFG_BOOL:
        return "bool";
    case RT_CFG_INT64:
        return "integer";
    case RT_CFG_UINT64:
        return "unsigned integer";
    case RT_CFG_DOUBLE:
        return "number";
    case RT_CFG_DURATION:
        return "duration";
    case RT_CFG_SIZE:
        return "size";
    case RT_CFG_ENUM:
        return "enum";
    case RT_CFG_STRLIST:
        return "list of strings";
    case RT_CFG_SECTION:
        return "section";
    case RT_CFG_CUSTOM:
        return f->type_name ? f->type_name : "custom";
    case RT_CFG_END:
        break;
    }
    return "?";
}

/* "a" or "an" for a type name, for messages like "expected an integer". */
static const char *article(const char *word)
{
    return strchr("aeiou", word[0]) != NULL ? "an" : "a";
}

static bool is_scalar_type(rt_cfg_type t)
{
    return t >= RT_CFG_STRING && t <= RT_CFG_ENUM;
}

static bool has_bounds(rt_cfg_type t)
{
    return t == RT_CFG_INT64 || t == RT_CFG_UINT64 || t == RT_CFG_DOUBLE || t == RT_CFG_DURATION ||
           t == RT_CFG_SIZE;
}

static void join_choices(const char *const *choices, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = '\0';
    for (int i = 0; choices != NULL && choices[i] != NULL; i++) {
        int w = snprintf(out + off, off < cap ? cap - off : 0, "%s%s", i ? ", " : "", choices[i]);
        off += (size_t)(w > 0 ? w : 0);
    }
}

/* Parse scalar text for field `f` (no bounds check). On failure write the reason (a sentence
 * starting with the quoted value) into `why` and return -1. */
static int parse_value(const rt_cfg_field *f, const char *text, value *v, char *why, size_t cap)
{
    switch (f->type) {
    case RT_CFG_STRING:
        v->s = text;
        return 0;
    case RT_CFG_BOOL:
        if (rt_cfg_parse_bool(text, &v->b) == 0) {
            return 0;
        }
        snprintf(why, cap, "\"%s\" is not a boolean (true or false)", text);
        return -1;
    case RT_CFG_INT64:
        if (rt_cfg_parse_int64(text, &v->i) == 0) {
            return 0;
        }
        snprintf(why, cap, "\"%s\" is not an integer", text);
        return -1;
    case RT_CFG_UINT64:
        if (rt_cfg_parse_uint64(text, &v->u) == 0) {
            return 0;
        }
        snprintf(why, cap, "\"%s\" is not a non-negative integer", text);
        return -1;
    case RT_CFG_DOUBLE:
        if (rt_cfg_parse_double(text, &v->d) == 0) {
            return 0;
        }
        snprintf(why, cap, "\"%s\" is not a number", text);
        return -1;
    case RT_CFG_DURATION:
        if (rt_cfg_parse_duration(text, &v->u) == 0) {
            return 0;
        }
        snprintf(why, cap, "\"%s\" is not a duration (examples: 30s, 500ms, 1m)", text);
        return -1;
    case RT_CFG_SIZE:
        if (rt_cfg_parse_size(text, &v->u) == 0) {
            return 0;
        }
        snprintf(why, cap, "\"%s\" is not a size (examples: 64MiB, 512KiB, 1GB, 1024)", text);
        return -1;
    case RT_CFG_ENUM:
        for (int i = 0; f->choices != NULL && f->choices[i] != NULL; i++) {
            if (strcmp(text, f->choices[i]) == 0) {
                v->e = i;
                return 0;
            }
        }
        char list[256];
        join_choices(f->choices, list, sizeof list);
        snprintf(why, cap, "\"%s\" is not one of: %s", text, list);
        return -1;
    default:
        snprintf(why, cap, "field type %d is not a scalar", (int)f->type);
        return -1;
    }
}

/* -1, 0, 1 as a <, ==, > b for the field's numeric type. */
static int compare(rt_cfg_type t, const value *a, const value *b)
{
    switch (t) {
    case RT_CFG_INT64:
        return a->i < b->i ? -1 : a->i > b->i;
    case RT_CFG_DOUBLE:
        return a->d < b->d ? -1 : a->d > b->d;
    default:
        return a->u < b->u ? -1 : a->u > b->u;
    }
}

/* Check `v` (parsed from `text`) against the field's bounds. Returns 0, or -1 with `why`.
 * Bounds that do not parse are a table bug, reported the same way. */
static int check_bounds(const rt_cfg_field *f, const value *v, const char *text, char *why,
                        size_t cap)
{
    if (!has_bounds(f->type)) {
        return 0;
    }
    value b;
    char tmp[256];
    if (f->min != NULL) {
        if (parse_value(f, f->min, &b, tmp, sizeof tmp) != 0) {
            snprintf(why, cap, "bad minimum in the table: %s", tmp);
            return -1;
        }
        if (compare(f->type, v, &b) < 0) {
            snprintf(why, cap, "%s is below the minimum %s", text, f->min);
            return -1;
        }
    }
    if (f->max != NULL) {
        if (parse_value(f, f->max, &b, tmp, sizeof tmp) != 0) {
            snprintf(why, cap, "bad maximum in the table: %s", tmp);
            return -1;
        }
        if (compare(f->type, v, &b) > 0) {
            snprintf(why, cap, "%s is above the maximum %s", text, f->max);
            return -1;
        }
    }
    return 0;
}

/* Store a parsed scalar into the field at `p`, freeing a string it replaces. */
static void store_value(const rt_cfg_field *f, const value *v, void *p)
{
    switch (f->type) {
    case RT_CFG_STRING: {
        char **sp = p;
        free(*sp);
        *sp = rt_strdup(v->s);
        break;
    }
    case RT_CFG_BOOL:
        *(bool *)p = v->b;
        break;
    case RT_CFG_INT64:
        *(int64_t *)p = v->i;
        break;
    case RT_CFG_UINT64:
    case RT_CFG_DURATION:
    case RT_CFG_SIZE:
        *(uint64_t *)p = v->u;
        break;
    case RT_CFG_DOUBLE:
        *(double *)p = v->d;
        break;
    case RT_CFG_ENUM:
        *(int *)p = v->e;
        break;
    default:
        break;
    }
}

static void strlist_free(rt_cfg_strlist *l)
{
    for (size_t i = 0; i < l->len; i++) {
        free(l->items[i]);
    }
    free(l->items);
    l->items = NULL;
    l->len = 0;
}

static char *join_path(const char *path, const char *key)
{
    if (path == NULL || path[0] == '\0') {
        return rt_strdup(key);
    }
    return rt_sprintf("%s.%s", path, key);
}

/* Parse `node` into the field `f` at `p`. `keyline` is the line of the key (used for errors
 * about an empty value, whose own position libyaml puts after the key). Returns 0 or -1. */
static int apply_field(rt_cfg_ctx *ctx, const rt_cfg_field *f, const rt_cfg_node *node, int keyline,
                       const char *path, void *p)
{
    char why[400];
    switch (f->type) {
    case RT_CFG_SECTION:
        return rt_cfg_apply(ctx, f->sub, node, path, p);
    case RT_CFG_CUSTOM:
        return f->parse(ctx, node, path, p);
    case RT_CFG_STRLIST: {
        rt_cfg_strlist nl = {NULL, 0};
        if (node->kind == RT_CFG_NODE_SCALAR && node->is_null) {
            strlist_free(p); /* "key:" with nothing: an empty list */
            return 0;
        }
        if (node->kind != RT_CFG_NODE_SEQUENCE) {
            rt_cfg_error(ctx, node->line, path, "expected a list of strings, got a %s",
                         rt_cfg_node_kind_name(node));
            return -1;
        }
        int rc = 0;
        nl.items = rt_calloc(node->n ? node->n : 1, sizeof *nl.items);
        for (size_t i = 0; i < node->n; i++) {
            const rt_cfg_node *it = node->items[i];
            if (it->kind != RT_CFG_NODE_SCALAR || it->is_null) {
                char *ip = rt_sprintf("%s[%zu]", path, i);
                rt_cfg_error(ctx, it->line, ip, "expected a string, got a %s",
                             it->is_null ? "null" : rt_cfg_node_kind_name(it));
                free(ip);
                rc = -1;
                continue;
            }
            nl.items[nl.len++] = rt_strdup(it->scalar);
        }
        if (rc != 0) {
            strlist_free(&nl);
            return -1;
        }
        strlist_free(p);
        *(rt_cfg_strlist *)p = nl;
        return 0;
    }
    default:
        break;
    }
    if (node->kind != RT_CFG_NODE_SCALAR) {
        rt_cfg_error(ctx, node->line, path, "expected %s %s, got a %s", article(type_name(f)),
                     type_name(f), rt_cfg_node_kind_name(node));
        return -1;
    }
    if (node->is_null && f->type != RT_CFG_STRING) {
        rt_cfg_error(ctx, keyline, path, "missing value (expected %s %s)", article(type_name(f)),
                     type_name(f));
        return -1;
    }
    if (node->is_null) {
        rt_cfg_error(ctx, keyline, path, "missing value (quote it: \"\" for an empty string)");
        return -1;
    }
    value v;
    if (parse_value(f, node->scalar, &v, why, sizeof why) != 0 ||
        check_bounds(f, &v, node->scalar, why, sizeof why) != 0) {
        rt_cfg_error(ctx, node->line, path, "%s", why);
        return -1;
    }
    store_value(f, &v, p);
    return 0;
}

static const rt_cfg_field *find_field(const rt_cfg_field *table, const char *key)
{
    for (const rt_cfg_field *f = table; f->key != NULL; f++) {
        if (strcmp(f->key, key) == 0) {
            return f;
        }
    }
    return NULL;
}

static void report_unknown(rt_cfg_ctx *ctx, const rt_cfg_field *table, int line, const char *kp)
{
    rt_buf known = RT_BUF_INIT;
    for (const rt_cfg_field *f = table; f->key != NULL; f++) {
        if (f != table) {
            rt_buf_append_str(&known, ", ");
        }
        rt_buf_append_str(&known, f->key);
    }
    rt_buf_append_byte(&known, '\0');
    rt_cfg_error(ctx, line, kp, "unknown key (known: %s)", (const char *)known.data);
    rt_buf_free(&known);
}

int rt_cfg_apply(rt_cfg_ctx *ctx, const rt_cfg_field *table, const rt_cfg_node *map,
                 const char *path, void *st)
{
    unsigned before = ctx->n_errors;
    bool empty = map == NULL || (map->kind == RT_CFG_NODE_SCALAR && map->is_null);
    if (!empty && map->kind != RT_CFG_NODE_MAPPING) {
        rt_cfg_error(ctx, map->line, path, "expected a mapping, got a %s",
                     rt_cfg_node_kind_name(map));
        return -1;
    }
    size_t n = empty ? 0 : map->n;
    for (size_t i = 0; i < n; i++) {
        const rt_cfg_pair *pr = &map->pairs[i];
        char *kp = join_path(path, pr->key);
        const rt_cfg_field *f = find_field(table, pr->key);
        size_t j;
        for (j = 0; j < i; j++) {
            if (strcmp(map->pairs[j].key, pr->key) == 0) {
                break;
            }
        }
        if (j < i) {
            rt_cfg_error(ctx, pr->line, kp, "duplicate key (first given on line %d)",
                         map->pairs[j].line);
        } else if (f == NULL) {
            report_unknown(ctx, table, pr->line, kp);
        } else {
            apply_field(ctx, f, pr->value, pr->line, kp, (char *)st + f->offset);
        }
        free(kp);
    }
    for (const rt_cfg_field *f = table; f->key != NULL; f++) {
        if ((f->flags & RT_CFG_F_REQUIRED) && rt_cfg_node_get(empty ? NULL : map, f->key) == NULL) {
            char *kp = join_path(path, f->key);
            rt_cfg_error(ctx, map ? map->line : 0, kp, "missing required key");
            free(kp);
        }
    }
    return ctx->n_errors > before ? -1 : 0;
}

/* Load YAML text `text` (a default for a list or custom field) and apply it to the field.
 * Returns 0 or -1 with the reason in ctx. */
static int apply_yaml_default(rt_cfg_ctx *ctx, const rt_cfg_field *f, const char *path, void *p)
{
    rt_cfg_doc *doc = NULL;
    /* Wrap as "v: <text>" so any YAML value (flow list, scalar, flow mapping) is accepted. */
    char *wrapped = rt_sprintf("v: %s\n", f->def);
    doc = rt_cfg_doc_load_string(ctx, wrapped, strlen(wrapped));
    free(wrapped);
    if (doc == NULL) {
        return -1;
    }
    const rt_cfg_node *v = rt_cfg_node_get(rt_cfg_doc_root(doc), "v");
    int rc = v ? apply_field(ctx, f, v, v->line, path, p) : -1;
    rt_cfg_doc_free(doc);
    return rc;
}

static void set_defaults(const rt_cfg_field *table, const char *prefix, void *st)
{
    for (const rt_cfg_field *f = table; f->key != NULL; f++) {
        void *p = (char *)st + f->offset;
        char *kp = join_path(prefix, f->key);
        if (f->type == RT_CFG_SECTION) {
            set_defaults(f->sub, kp, p);
        } else if (f->def != NULL && (f->type == RT_CFG_STRLIST || f->type == RT_CFG_CUSTOM)) {
            rt_cfg_ctx ctx;
            rt_cfg_ctx_init(&ctx, "<default>");
            if (apply_yaml_default(&ctx, f, kp, p) != 0) {
                rt_log(RT_LOG_ERROR, "config table: bad default", "key=%s error=\"%s\"", kp,
                       ctx.first_error);
                abort();
            }
            rt_cfg_ctx_free(&ctx);
        } else if (f->def != NULL && is_scalar_type(f->type)) {
            value v;
            char why[400];
            if (parse_value(f, f->def, &v, why, sizeof why) != 0) {
                rt_log(RT_LOG_ERROR, "config table: bad default", "key=%s error=\"%s\"", kp, why);
                abort();
            }
            store_value(f, &v, p);
        }
        free(kp);
    }
}

void rt_cfg_set_defaults(const rt_cfg_field *table, void *st)
{
    set_defaults(table, NULL, st);
}

void rt_cfg_free_struct(const rt_cfg_field *table, void *st)
{
    for (const rt_cfg_field *f = table; f->key != NULL; f++) {
        void *p = (char *)st + f->offset;
        switch (f->type) {
        case RT_CFG_STRING:
            free(*(char **)p);
            *(char **)p = NULL;
            break;
        case RT_CFG_STRLIST:
            strlist_free(p);
            break;
        case RT_CFG_SECTION:
            rt_cfg_free_struct(f->sub, p);
            break;
        case RT_CFG_CUSTOM:
            if (f->free != NULL) {
                f->free(p);
            }
            break;
        default:
            break;
        }
    }
}

int rt_cfg_load_file(const char *file, const rt_cfg_field *table, void *st, char *err,
                     size_t errlen)
{
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, file);
    rt_cfg_set_defaults(table, st);
    rt_cfg_doc *doc = rt_cfg_doc_load_file(&ctx, file);
    int rc = -1;
    if (doc == NULL) {
        goto fail;
    }
    if (rt_cfg_apply(&ctx, table, rt_cfg_doc_root(doc), NULL, st) != 0) {
        goto fail;
    }
    rc = 0;
fail:
    if (rc != 0 && err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", ctx.first_error);
    }
    rt_cfg_doc_free(doc);
    rt_cfg_ctx_free(&ctx);
    return rc;
}

/* ---- table checking and documentation ------------------------------------------------------ */

/* Check one field's own description (not its sub-table). Returns 0, or -1 with `why`. */
static int check_field(const rt_cfg_field *table, const rt_cfg_field *f, const char *kp, char *why,
                       size_t cap)
{
    value v, lo, hi;
    for (const rt_cfg_field *g = table; g != f; g++) {
        if (strcmp(g->key, f->key) == 0) {
            snprintf(why, cap, "key appears twice");
            return -1;
        }
    }
    if (f->type <= RT_CFG_END || f->type > RT_CFG_CUSTOM) {
        snprintf(why, cap, "unknown type %d", (int)f->type);
        return -1;
    }
    if ((f->min != NULL || f->max != NULL) && !has_bounds(f->type)) {
        snprintf(why, cap, "bounds given for a %s", type_name(f));
        return -1;
    }
    if (f->type == RT_CFG_ENUM && (f->choices == NULL || f->choices[0] == NULL)) {
        snprintf(why, cap, "enum without choices");
        return -1;
    }
    if (f->type == RT_CFG_SECTION && (f->sub == NULL || f->def != NULL)) {
        snprintf(why, cap, "a section needs a sub-table and takes its defaults from it");
        return -1;
    }
    if (f->type == RT_CFG_CUSTOM && f->parse == NULL) {
        snprintf(why, cap, "custom field without a parse callback");
        return -1;
    }
    if (f->min != NULL && parse_value(f, f->min, &lo, why, cap) != 0) {
        return -1;
    }
    if (f->max != NULL && parse_value(f, f->max, &hi, why, cap) != 0) {
        return -1;
    }
    if (f->min != NULL && f->max != NULL && compare(f->type, &lo, &hi) > 0) {
        snprintf(why, cap, "minimum %s is above maximum %s", f->min, f->max);
        return -1;
    }
    if (f->def != NULL && is_scalar_type(f->type)) {
        if (parse_value(f, f->def, &v, why, cap) != 0 ||
            check_bounds(f, &v, f->def, why, cap) != 0) {
            return -1;
        }
    } else if (f->def != NULL && f->type == RT_CFG_STRLIST) {
        rt_cfg_ctx ctx;
        rt_cfg_ctx_init(&ctx, "<default>");
        rt_cfg_strlist tmp = {NULL, 0};
        int rc = apply_yaml_default(&ctx, f, kp, &tmp);
        if (rc != 0) {
            snprintf(why, cap, "bad default: %s", ctx.first_error);
        }
        strlist_free(&tmp);
        rt_cfg_ctx_free(&ctx);
        return rc;
    } else if (f->def != NULL && f->type == RT_CFG_CUSTOM) {
        /* The callback's storage size is unknown here, so only the YAML itself is checked. */
        rt_cfg_ctx ctx;
        rt_cfg_ctx_init(&ctx, "<default>");
        char *wrapped = rt_sprintf("v: %s\n", f->def);
        rt_cfg_doc *doc = rt_cfg_doc_load_string(&ctx, wrapped, strlen(wrapped));
        free(wrapped);
        if (doc == NULL) {
            snprintf(why, cap, "default is not YAML: %s", ctx.first_error);
        }
        rt_cfg_doc_free(doc);
        rt_cfg_ctx_free(&ctx);
        return doc == NULL ? -1 : 0;
    }
    return 0;
}

static int check_table(const rt_cfg_field *table, const char *prefix, char *err, size_t errlen)
{
    for (const rt_cfg_field *f = table; f->key != NULL; f++) {
        char *kp = join_path(prefix, f->key);
        char why[400];
        int rc = check_field(table, f, kp, why, sizeof why);
        if (rc != 0) {
            snprintf(err, errlen, "config table: %s: %s", kp, why);
        } else if (f->type == RT_CFG_SECTION) {
            rc = check_table(f->sub, kp, err, errlen);
        }
        free(kp);
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

int rt_cfg_check_table(const rt_cfg_field *table, char *err, size_t errlen)
{
    return check_table(table, NULL, err, errlen);
}

void rt_cfg_describe(const rt_cfg_field *table, const char *prefix, rt_buf *out)
{
    for (const rt_cfg_field *f = table; f->key != NULL; f++) {
        char *kp = join_path(prefix, f->key);
        rt_buf_printf(out, "%s (%s", kp, type_name(f));
        if (f->type == RT_CFG_ENUM) {
            char list[256];
            join_choices(f->choices, list, sizeof list);
            rt_buf_printf(out, ": %s", list);
        }
        rt_buf_append_str(out, ")");
        if (f->type != RT_CFG_SECTION) {
            if (f->def == NULL) {
                rt_buf_append_str(out, f->flags & RT_CFG_F_REQUIRED ? " required" : " no default");
            } else if (f->type == RT_CFG_STRING) {
                rt_buf_printf(out, " default \"%s\"", f->def);
            } else {
                rt_buf_printf(out, " default %s", f->def);
            }
        }
        if (f->min != NULL || f->max != NULL) {
            rt_buf_printf(out, " range [%s, %s]", f->min ? f->min : "", f->max ? f->max : "");
        }
        rt_buf_append_byte(out, '\n');
        if (f->help != NULL) {
            rt_buf_printf(out, "    %s\n", f->help);
        }
        if (f->type == RT_CFG_SECTION) {
            rt_cfg_describe(f->sub, kp, out);
        }
        free(kp);
    }
}
