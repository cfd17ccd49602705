/* config.h - table-driven YAML configuration: one table of field descriptors per section.
 *
 * A config file is loaded into a small tree of nodes (mapping / sequence / scalar, each with the
 * line it starts on), then a table of rt_cfg_field descriptors is applied to a plain C struct:
 *
 *     typedef struct { uint64_t decision_wait_ns; int64_t num_traces; char *name; } my_cfg;
 *     static const rt_cfg_field my_fields[] = {
 *         {.key = "decision_wait", .type = RT_CFG_DURATION,
 *          .offset = offsetof(my_cfg, decision_wait_ns), .def = "30s", .min = "1ms",
 *          .max = "10m", .help = "How long to wait for a trace's spans before deciding."},
 *         ...
 *         {0},
 *     };
 *
 * The table is the single source of truth: defaults (given as text and parsed by the same parser
 * as file values, so there is one copy of each default), bounds, help text for
 * `--help-config`, and the set of known keys (anything else is an error).
 *
 * Field storage by type (what `offset` must point at):
 *   RT_CFG_STRING    char *            (owned by the struct; NULL when no default)
 *   RT_CFG_BOOL      bool
 *   RT_CFG_INT64     int64_t
 *   RT_CFG_UINT64    uint64_t
 *   RT_CFG_DOUBLE    double
 *   RT_CFG_DURATION  uint64_t          nanoseconds; text like "30s", "500ms", "1m30s"
 *   RT_CFG_SIZE      uint64_t          bytes; text like "64MiB", "1GB", "1024"
 *   RT_CFG_ENUM      int               index into `choices`
 *   RT_CFG_STRLIST   rt_cfg_strlist    (items owned by the struct); YAML sequence of scalars
 *   RT_CFG_SECTION   an embedded struct described by `sub` (offsets in `sub` are relative to it)
 *   RT_CFG_CUSTOM    whatever `parse` writes; `free` releases it
 *
 * Defaults: for scalar types `def` is parsed by the type's parser; for RT_CFG_STRLIST and
 * RT_CFG_CUSTOM it is YAML text (e.g. "[a, b]") loaded and handed to the same code a file value
 * goes through. A default that does not parse is a bug in the table: rt_cfg_set_defaults() aborts
 * with a message, and rt_cfg_check_table() lets a unit test catch it first.
 *
 * Errors name file, line and the full key path, e.g.
 *   sampler.yaml:7: tail_sampling.decision_wait: "30x" is not a duration (examples: 30s, ...)
 *   router.yaml:3: listeners.htp: unknown key (known: http, grpc, admin)
 * Every error is collected in an rt_cfg_ctx; the first one is kept separately for callers that
 * print one line.
 */
#ifndef RT_CONFIG_H
#define RT_CONFIG_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the node tree ------------------------------------------------------------------------- */

typedef enum rt_cfg_node_kind {
    RT_CFG_NODE_SCALAR = 0,
    RT_CFG_NODE_SEQUENCE,
    RT_CFG_NODE_MAPPING,
} rt_cfg_node_kind;

typedef struct rt_cfg_node rt_cfg_node;

typedef struct rt_cfg_pair {
    const char *key; /* scalar key text */
    int line;        /* 1-based line of the key */
    rt_cfg_node *value;
} rt_cfg_pair;

/* One node of a loaded document. All nodes (and their strings) are owned by the rt_cfg_doc they
 * came from; an alias (*anchor) points at the anchored node itself, so a node may be reachable
 * twice. Read-only for everyone but the loader. */
struct rt_cfg_node {
    rt_cfg_node_kind kind;
    int line;            /* 1-based line where the node starts */
    char *scalar;        /* RT_CFG_NODE_SCALAR: the text (never NULL) */
    bool is_null;        /* plain scalar spelled "", "~", "null" (YAML null) */
    size_t n;            /* number of items (sequence) or pairs (mapping) */
    rt_cfg_node **items; /* RT_CFG_NODE_SEQUENCE */
    rt_cfg_pair *pairs;  /* RT_CFG_NODE_MAPPING, in file order */
};

typedef struct rt_cfg_doc rt_cfg_doc;

/* Error sink for loading and applying. `file` (borrowed) is the name printed in messages. */
typedef struct rt_cfg_ctx {
    const char *file;
    unsigned n_errors;
    char first_error[512]; /* "" until the first error */
    rt_buf errors;         /* every error message, each ending in '\n'; owned */
} rt_cfg_ctx;

void rt_cfg_ctx_init(rt_cfg_ctx *ctx, const char *file);
void rt_cfg_ctx_free(rt_cfg_ctx *ctx);
/* Record an error "<file>:<line>: <path>: <message>" (path may be NULL or "" to leave it out;
 * line <= 0 leaves the line out). Custom parse callbacks report through this. */
void rt_cfg_error(rt_cfg_ctx *ctx, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Load a YAML file. Returns the document (caller frees with rt_cfg_doc_free), or NULL after
 * recording an error in `ctx` (unreadable file, YAML syntax error with its line, more than one
 * document, a top level that is not a mapping). An empty file gives an empty root mapping. */
rt_cfg_doc *rt_cfg_doc_load_file(rt_cfg_ctx *ctx, const char *path);
/* The same from memory; ctx->file names the text in messages. */
rt_cfg_doc *rt_cfg_doc_load_string(rt_cfg_ctx *ctx, const char *text, size_t len);
void rt_cfg_doc_free(rt_cfg_doc *doc);
/* The root node: always a mapping for documents from the loaders above. */
const rt_cfg_node *rt_cfg_doc_root(const rt_cfg_doc *doc);

/* The value for `key` in mapping `map`, or NULL if absent or `map` is not a mapping. */
const rt_cfg_node *rt_cfg_node_get(const rt_cfg_node *map, const char *key);
/* 1-based line of a node (0 for NULL). */
int rt_cfg_node_line(const rt_cfg_node *node);
/* "scalar", "list" or "mapping" - for error messages. */
const char *rt_cfg_node_kind_name(const rt_cfg_node *node);

/* ---- the field table ----------------------------------------------------------------------- */

typedef enum rt_cfg_type {
    RT_CFG_END = 0, /* unused marker; tables end with an entry whose key is NULL */
    RT_CFG_STRING,
    RT_CFG_BOOL,
    RT_CFG_INT64,
    RT_CFG_UINT64,
    RT_CFG_DOUBLE,
    RT_CFG_DURATION,
    RT_CFG_SIZE,
    RT_CFG_ENUM,
    RT_CFG_STRLIST,
    RT_CFG_SECTION,
    RT_CFG_CUSTOM,
} rt_cfg_type;

typedef struct rt_cfg_strlist {
    char **items; /* owned, each owned */
    size_t len;
} rt_cfg_strlist;

/* Parse `node` (never NULL) for the field at `path` into `field` (the address at `offset`).
 * On error report through rt_cfg_error(ctx, node->line, path, ...) and return -1; return 0 on
 * success. The callback may be called again for the same field (a file value replacing the
 * default): it must release what the previous call stored. It may use rt_cfg_apply() on
 * mapping items with a sub-table of its own. */
typedef int (*rt_cfg_parse_fn)(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path,
                               void *field);
/* Release what a parse callback stored in `field` and leave it reusable. */
typedef void (*rt_cfg_free_fn)(void *field);

/* Flags. */
#define RT_CFG_F_REQUIRED 0x1u /* the key must be present in the file */

typedef struct rt_cfg_field {
    const char *key; /* NULL ends the table */
    rt_cfg_type type;
    size_t offset;
    const char *def; /* default as text (see above); NULL = zero / NULL / empty */
    const char *min; /* inclusive bounds as text, parsed by the type's parser; NULL = none */
    const char *max; /*   (numeric, duration and size types only) */
    const char *help;
    const char *const *choices;     /* RT_CFG_ENUM: NULL-terminated allowed strings */
    const struct rt_cfg_field *sub; /* RT_CFG_SECTION: the nested table */
    rt_cfg_parse_fn parse;          /* RT_CFG_CUSTOM */
    rt_cfg_free_fn free;            /* RT_CFG_CUSTOM (may be NULL if parse allocates nothing) */
    const char *type_name;          /* RT_CFG_CUSTOM: shown by rt_cfg_describe ("list of ...") */
    unsigned flags;
} rt_cfg_field;

/* Fill every field of `st` (which must be zeroed or freshly rt_cfg_free_struct'ed) with its
 * default, recursing into sections. Aborts if a default does not parse (a table bug). */
void rt_cfg_set_defaults(const rt_cfg_field *table, void *st);

/* Apply mapping `map` to `st` (defaults already set): every key must be in `table`, values are
 * parsed and bounds-checked; replaced strings/lists are freed. `path` is the key path of `map`
 * ("" or NULL at the top level) used to prefix keys in messages. A NULL node (YAML null, e.g.
 * "tls:" with nothing under it) counts as an empty mapping. Returns 0, or -1 after recording
 * every error found in `ctx` (fields without errors are still applied). */
int rt_cfg_apply(rt_cfg_ctx *ctx, const rt_cfg_field *table, const rt_cfg_node *map,
                 const char *path, void *st);

/* Convenience for a whole file: defaults, load, apply. On failure writes the first error into
 * `err` and returns -1; `st` then holds defaults plus whatever applied, and must still be freed
 * with rt_cfg_free_struct. */
int rt_cfg_load_file(const char *file, const rt_cfg_field *table, void *st, char *err,
                     size_t errlen);

/* Free everything the table's fields own in `st` (strings, lists, custom data, recursively) and
 * zero those fields. Does not free `st` itself. */
void rt_cfg_free_struct(const rt_cfg_field *table, void *st);

/* Check a table for bugs: defaults and bounds parse, defaults lie within bounds, enum defaults
 * are among the choices, sections have sub-tables, custom fields have parse callbacks, no key
 * appears twice. Returns 0, or -1 with a message in `err`. */
int rt_cfg_check_table(const rt_cfg_field *table, char *err, size_t errlen);

/* Append documentation of the table to `out`, one block per key (full dotted path, type,
 * default, bounds, help), for `--help-config`. `prefix` is prepended to keys (NULL for none). */
void rt_cfg_describe(const rt_cfg_field *table, const char *prefix, rt_buf *out);

/* ---- value parsers (also used for defaults and bounds) ------------------------------------- */

/* Go-style duration: one or more <number><unit> with unit ns, us (or µs), ms, s, m, h and an
 * optional decimal fraction ("1.5h", "1m30s", "100us"); "0" alone is allowed. Negative values,
 * missing units, unknown units and values above UINT64_MAX ns are rejected. Returns 0 or -1. */
int rt_cfg_parse_duration(const char *s, uint64_t *ns);
/* Size: a number with an optional decimal fraction and an optional unit: B, KB/MB/GB/TB (powers
 * of 1000), KiB/MiB/GiB/TiB or Ki/Mi/Gi/Ti (powers of 1024); unit letters are case-insensitive
 * and may follow one space. The result is rounded down to whole bytes. Returns 0 or -1. */
int rt_cfg_parse_size(const char *s, uint64_t *bytes);
/* true/false/yes/no/on/off, case-insensitive. Returns 0 or -1. */
int rt_cfg_parse_bool(const char *s, bool *out);
/* Decimal integers with an optional sign, no trailing garbage, within range. Return 0 or -1. */
int rt_cfg_parse_int64(const char *s, int64_t *out);
int rt_cfg_parse_uint64(const char *s, uint64_t *out);
/* A finite number (strtod syntax). Returns 0 or -1. */
int rt_cfg_parse_double(const char *s, double *out);

/* Format a duration in ns the way rt_cfg_parse_duration reads it ("1m30s", "250ms", "0s").
 * Returns `out`. */
const char *rt_cfg_format_duration(uint64_t ns, char *out, size_t cap);

#endif
