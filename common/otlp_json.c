/* otlp_json.c - OTLP/JSON <-> protobuf for ExportTraceServiceRequest (see otlp_json.h).
 *
 * JSON -> protobuf: jansson parses the text (after a cheap pre-scan that enforces the nesting
 * limit), the tree is converted into protobuf-c structs whose memory all comes from one arena
 * (strings are borrowed from the jansson tree, not copied), and protobuf-c packs them. Every
 * error path therefore frees exactly two things: the arena and the jansson tree.
 *
 * protobuf -> JSON: protobuf-c unpacks (after a descriptor-driven pre-scan that enforces the
 * nesting limit, so protobuf-c's recursive decoder cannot be driven off the stack), and a small
 * writer appends JSON text straight into the caller's rt_buf; no intermediate tree.
 *
 * Both directions keep a stack of path frames (field name + array index) that costs a pointer
 * store per level and is only rendered into text when an error is reported.
 */
#include "otlp_json.h"

#include "base64.h"

#include "alloc.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event Event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link Link;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__ArrayValue ArrayValue;
typedef Opentelemetry__Proto__Common__V1__KeyValueList KeyValueList;

#define TRACE_ID_LEN 16
#define SPAN_ID_LEN  8

/* ---------------------------------------------------------------------------------------------
 * Error paths: "resourceSpans[0].scopeSpans[1].spans[3].traceId"
 * ------------------------------------------------------------------------------------------- */

#define PATH_FRAMES 96 /* > RT_OTLP_JSON_MAX_DEPTH; frames past this are counted, not recorded */
#define NO_INDEX    ((size_t)-1)

typedef struct path_frame {
    const char *name; /* ref: a key in the jansson tree or a string literal */
    size_t index;     /* NO_INDEX when the frame is not an array element */
} path_frame;

typedef struct path {
    path_frame f[PATH_FRAMES];
    size_t n;
} path;

static void path_push(path *p, const char *name)
{
    if (p->n < PATH_FRAMES) {
        p->f[p->n].name = name;
        p->f[p->n].index = NO_INDEX;
    }
    p->n++;
}

static void path_index(path *p, size_t i)
{
    if (p->n > 0 && p->n <= PATH_FRAMES) {
        p->f[p->n - 1].index = i;
    }
}

static void path_pop(path *p)
{
    p->n--;
}

/* Render the path as text into dst (truncating with "..." if it does not fit). */
static void path_render(const path *p, char *dst, size_t cap)
{
    size_t len = 0;
    dst[0] = '\0';
    size_t n = p->n < PATH_FRAMES ? p->n : PATH_FRAMES;
    for (size_t i = 0; i < n && len < cap; i++) {
        int w;
        const char *dot = i > 0 ? "." : "";
        if (p->f[i].index != NO_INDEX) {
            w = snprintf(dst + len, cap - len, "%s%s[%zu]", dot, p->f[i].name, p->f[i].index);
        } else {
            w = snprintf(dst + len, cap - len, "%s%s", dot, p->f[i].name);
        }
        if (w < 0) {
            break;
        }
        len += (size_t)w;
    }
    if (len >= cap && cap > 4) {
        memcpy(dst + cap - 4, "...", 4);
    }
}

/* Write "<path>: <message>" into err (when the caller gave one). Always returns -1. */
static int report(const path *p, char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0) {
        return -1;
    }
    char where[512];
    char msg[256];
    path_render(p, where, sizeof(where));
    vsnprintf(msg, sizeof(msg), fmt, ap);
    snprintf(err, errlen, "%s: %s", where[0] ? where : "request", msg);
    return -1;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------------------------
 * Arena: every protobuf-c struct built from JSON lives here and dies in one arena_free().
 * ------------------------------------------------------------------------------------------- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used;
    size_t cap;
    max_align_t data[];
} arena_chunk;

typedef struct arena {
    arena_chunk *head;
    size_t next_cap;
} arena;

/* Zeroed, max_align_t-aligned memory that lives until arena_free(). Aborts on OOM. */
static void *arena_alloc(arena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    n = (n + align - 1) / align * align;
    if (n == 0) {
        n = align;
    }
    arena_chunk *c = a->head;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = a->next_cap ? a->next_cap : 4096;
        if (a->next_cap < (1u << 20)) {
            a->next_cap = cap * 2;
        }
        if (cap < n) {
            cap = n;
        }
        c = rt_malloc(sizeof(*c) + cap);
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

static void arena_free(arena *a)
{
    arena_chunk *c = a->head;
    while (c != NULL) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Hex and base64
 * ------------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------------
 * JSON -> protobuf
 * ------------------------------------------------------------------------------------------- */

typedef struct in_ctx {
    arena mem;
    path path;
    char *err;
    size_t errlen;
} in_ctx;

static int in_fail(in_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int in_fail(in_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(&c->path, c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Report an error about field `key` of the object being converted. Returns -1. */
static int fail_at(in_ctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(in_ctx *c, const char *key, const char *fmt, ...)
{
    path_push(&c->path, key);
    va_list ap;
    va_start(ap, fmt);
    report(&c->path, c->err, c->errlen, fmt, ap);
    va_end(ap);
    path_pop(&c->path);
    return -1;
}

static const char *jtype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "an unknown JSON value";
}

/* Look a field up by its lowerCamelCase name, then by its snake_case name (NULL when the two
 * are the same). A null value counts as absent. *key gets the spelling found, for error paths. */
static json_t *field(const json_t *obj, const char *camel, const char *snake, const char **key)
{
    json_t *v = json_object_get(obj, camel);
    *key = camel;
    if ((v == NULL || json_is_null(v)) && snake != NULL) {
        v = json_object_get(obj, snake);
        *key = snake;
    }
    if (v != NULL && json_is_null(v)) {
        v = NULL;
    }
    return v;
}

static int get_string(in_ctx *c, const json_t *obj, const char *camel, const char *snake,
                      char **out)
{
    const char *key;
    json_t *v = field(obj, camel, snake, &key);
    if (v == NULL) {
        return 0;
    }
    if (!json_is_string(v)) {
        return fail_at(c, key, "expected a string, got %s", jtype(v));
    }
    /* Borrowed from the jansson tree, which outlives the pack. protobuf-c never writes it. */
    *out = (char *)json_string_value(v);
    return 0;
}

/* Is s a plain decimal integer: an optional '-' (only if allow_minus) and 1+ digits? */
static bool is_decimal(const char *s, bool allow_minus)
{
    if (allow_minus && *s == '-') {
        s++;
    }
    if (*s == '\0') {
        return false;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
    }
    return true;
}

/* Convert v (a JSON integer, an integral JSON number, or a decimal string) to an unsigned
 * integer no greater than max. */
static int to_unsigned(in_ctx *c, const char *key, const json_t *v, uint64_t max, uint64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || (uint64_t)i > max) {
            return fail_at(c, key, "%lld is out of range (0 to %llu)", (long long)i,
                           (unsigned long long)max);
        }
        *out = (uint64_t)i;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* 18446744073709551616.0 is 2^64: every double below it converts exactly. */
        if (d != floor(d) || d < 0 || d >= 18446744073709551616.0 || (uint64_t)d > max) {
            return fail_at(c, key, "expected an integer from 0 to %llu, got %.17g",
                           (unsigned long long)max, d);
        }
        *out = (uint64_t)d;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!is_decimal(s, false)) {
            return fail_at(c, key, "expected a decimal integer string, got \"%.40s\"", s);
        }
        uint64_t acc = 0;
        for (; *s; s++) {
            uint64_t digit = (uint64_t)(*s - '0');
            if (acc > (max - digit) / 10) {
                return fail_at(c, key, "integer is out of range (0 to %llu)",
                               (unsigned long long)max);
            }
            acc = acc * 10 + digit;
        }
        *out = acc;
        return 0;
    }
    return fail_at(c, key, "expected an integer (number or decimal string), got %s", jtype(v));
}

/* Convert v (a JSON integer, an integral JSON number, or a decimal string) to an int64. */
static int to_signed(in_ctx *c, const char *key, const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* [-2^63, 2^63): every integral double in this range converts exactly. */
        if (d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0) {
            return fail_at(c, key, "expected a 64-bit integer, got %.17g", d);
        }
        *out = (int64_t)d;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!is_decimal(s, true)) {
            return fail_at(c, key, "expected a decimal integer string, got \"%.40s\"", s);
        }
        bool neg = *s == '-';
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        uint64_t acc = 0;
        for (s += neg; *s; s++) {
            uint64_t digit = (uint64_t)(*s - '0');
            if (acc > (limit - digit) / 10) {
                return fail_at(c, key, "integer is out of the 64-bit signed range");
            }
            acc = acc * 10 + digit;
        }
        /* Negate in unsigned arithmetic so INT64_MIN needs no signed overflow. */
        *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
        return 0;
    }
    return fail_at(c, key, "expected an integer (number or decimal string), got %s", jtype(v));
}

static int get_u32(in_ctx *c, const json_t *obj, const char *camel, const char *snake,
                   uint32_t *out)
{
    const char *key;
    json_t *v = field(obj, camel, snake, &key);
    uint64_t u = 0;
    if (v == NULL) {
        return 0;
    }
    if (to_unsigned(c, key, v, UINT32_MAX, &u) != 0) {
        return -1;
    }
    *out = (uint32_t)u;
    return 0;
}

static int get_u64(in_ctx *c, const json_t *obj, const char *camel, const char *snake,
                   uint64_t *out)
{
    const char *key;
    json_t *v = field(obj, camel, snake, &key);
    if (v == NULL) {
        return 0;
    }
    return to_unsigned(c, key, v, UINT64_MAX, out);
}

/* An enum: an integer in int32 range or one of the names in `names` (indexed by value). */
static int get_enum(in_ctx *c, const json_t *obj, const char *camel, const char *snake,
                    const char *const *names, size_t n_names, int *out)
{
    const char *key;
    json_t *v = field(obj, camel, snake, &key);
    if (v == NULL) {
        return 0;
    }
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < INT32_MIN || i > INT32_MAX) {
            return fail_at(c, key, "enum value %lld is out of the int32 range", (long long)i);
        }
        *out = (int)i;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (size_t i = 0; i < n_names; i++) {
            if (strcmp(s, names[i]) == 0) {
                *out = (int)i;
                return 0;
            }
        }
        return fail_at(c, key, "unknown enum name \"%.40s\"", s);
    }
    return fail_at(c, key, "expected an enum number or name, got %s", jtype(v));
}

/* A trace or span id: exactly 2 * want hex digits (either case), or "" for no id. */
static int get_id(in_ctx *c, const json_t *obj, const char *camel, const char *snake, size_t want,
                  ProtobufCBinaryData *out)
{
    const char *key;
    json_t *v = field(obj, camel, snake, &key);
    if (v == NULL) {
        return 0;
    }
    if (!json_is_string(v)) {
        return fail_at(c, key, "expected a string of %zu hex digits, got %s", want * 2, jtype(v));
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0) {
        return 0;
    }
    if (len != want * 2) {
        return fail_at(c, key, "expected %zu hex digits, got %zu characters", want * 2, len);
    }
    uint8_t *bytes = arena_alloc(&c->mem, want);
    for (size_t i = 0; i < want; i++) {
        int hi = rt_hex_digit((unsigned char)s[2 * i]);
        int lo = rt_hex_digit((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return fail_at(c, key, "expected %zu hex digits, found a non-hex character at %zu",
                           want * 2, hi < 0 ? 2 * i : 2 * i + 1);
        }
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    out->data = bytes;
    out->len = want;
    return 0;
}

/* Look up a message-typed field: absent/null leaves *out NULL; anything but an object errors. */
static int get_object(in_ctx *c, const json_t *obj, const char *camel, const char *snake,
                      json_t **out, const char **key)
{
    *out = field(obj, camel, snake, key);
    if (*out != NULL && !json_is_object(*out)) {
        return fail_at(c, *key, "expected an object, got %s", jtype(*out));
    }
    return 0;
}

/* Converts one JSON object into the (zeroed, arena-owned) protobuf-c struct at msg. */
typedef int (*conv_fn)(in_ctx *c, const json_t *obj, void *msg);

/* A repeated message field: an array of objects, each converted by fn into a struct of `size`
 * bytes. Sets *n_out and *arr_out (arena-owned) when the array is present and non-empty. */
static int get_repeated(in_ctx *c, const json_t *obj, const char *camel, const char *snake,
                        size_t size, conv_fn fn, size_t *n_out, void ***arr_out)
{
    const char *key;
    json_t *arr = field(obj, camel, snake, &key);
    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr)) {
        return fail_at(c, key, "expected an array, got %s", jtype(arr));
    }
    size_t n = json_array_size(arr);
    if (n == 0) {
        return 0;
    }
    void **ptrs = arena_alloc(&c->mem, n * sizeof(*ptrs));
    char *elems = arena_alloc(&c->mem, n * size);
    path_push(&c->path, key);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        path_index(&c->path, i);
        if (!json_is_object(e)) {
            return in_fail(c, "expected an object, got %s", jtype(e));
        }
        ptrs[i] = elems + i * size;
        if (fn(c, e, ptrs[i]) != 0) {
            return -1;
        }
    }
    path_pop(&c->path);
    *n_out = n;
    *arr_out = ptrs;
    return 0;
}

/* A double: a JSON number, "NaN", "Infinity", "-Infinity", or a decimal number in a string
 * (proto3 JSON allows quoted numbers). */
static int to_double(in_ctx *c, const char *key, const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (!json_is_string(v)) {
        return fail_at(c, key, "expected a number, got %s", jtype(v));
    }
    const char *s = json_string_value(v);
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
        return 0;
    }
    if (strcmp(s, "Infinity") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Infinity") == 0) {
        *out = -INFINITY;
        return 0;
    }
    /* The charset check keeps strtod's extras (hex floats, "inf", "nan", spaces) out. */
    if (s[0] != '\0' && strspn(s, "0123456789+-.eE") == strlen(s)) {
        char *end = NULL;
        double d = strtod(s, &end);
        if (end != s && *end == '\0') {
            *out = d;
            return 0;
        }
    }
    return fail_at(c, key,
                   "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\", got \"%.40s\"", s);
}

static int conv_any(in_ctx *c, const json_t *obj, void *msg);
static int conv_kv(in_ctx *c, const json_t *obj, void *msg);

#define GET_REPEATED(c, obj, camel, snake, type, fn, msgp, field_)                                 \
    get_repeated((c), (obj), (camel), (snake), sizeof(type), (fn), &(msgp)->n_##field_,            \
                 (void ***)&(msgp)->field_)

#define GET_ATTRIBUTES(c, obj, msgp)                                                               \
    GET_REPEATED(c, obj, "attributes", NULL, KeyValue, conv_kv, msgp, attributes)

static int conv_array_value(in_ctx *c, const json_t *obj, void *msg)
{
    ArrayValue *av = msg;
    opentelemetry__proto__common__v1__array_value__init(av);
    return GET_REPEATED(c, obj, "values", NULL, AnyValue, conv_any, av, values);
}

static int conv_kvlist_value(in_ctx *c, const json_t *obj, void *msg)
{
    KeyValueList *kl = msg;
    opentelemetry__proto__common__v1__key_value_list__init(kl);
    return GET_REPEATED(c, obj, "values", NULL, KeyValue, conv_kv, kl, values);
}

/* One AnyValue: at most one of the seven value keys may be present (an empty object is an
 * AnyValue with no value, which is legal). */
static int conv_any(in_ctx *c, const json_t *obj, void *msg)
{
    static const struct {
        const char *camel;
        const char *snake;
        int which;
    } kinds[] = {
        {"stringValue", "string_value",
         OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE},
        {"boolValue", "bool_value", OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE},
        {"intValue", "int_value", OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE},
        {"doubleValue", "double_value",
         OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE},
        {"arrayValue", "array_value",
         OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE},
        {"kvlistValue", "kvlist_value",
         OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE},
        {"bytesValue", "bytes_value",
         OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE},
    };
    AnyValue *av = msg;
    opentelemetry__proto__common__v1__any_value__init(av);
    const char *set_key = NULL;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        const char *key;
        json_t *v = field(obj, kinds[k].camel, kinds[k].snake, &key);
        if (v == NULL) {
            continue;
        }
        if (set_key != NULL) {
            return fail_at(c, key, "AnyValue already has %s; only one value kind is allowed",
                           set_key);
        }
        set_key = key;
        switch (kinds[k].which) {
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
            if (!json_is_string(v)) {
                return fail_at(c, key, "expected a string, got %s", jtype(v));
            }
            av->string_value = (char *)json_string_value(v);
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
            if (!json_is_boolean(v)) {
                return fail_at(c, key, "expected true or false, got %s", jtype(v));
            }
            av->bool_value = json_is_true(v);
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
            if (to_signed(c, key, v, &av->int_value) != 0) {
                return -1;
            }
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
            if (to_double(c, key, v, &av->double_value) != 0) {
                return -1;
            }
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
            if (!json_is_object(v)) {
                return fail_at(c, key, "expected an object, got %s", jtype(v));
            }
            bool is_array =
                kinds[k].which == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
            path_push(&c->path, key);
            int rc;
            if (is_array) {
                av->array_value = arena_alloc(&c->mem, sizeof(ArrayValue));
                rc = conv_array_value(c, v, av->array_value);
            } else {
                av->kvlist_value = arena_alloc(&c->mem, sizeof(KeyValueList));
                rc = conv_kvlist_value(c, v, av->kvlist_value);
            }
            if (rc != 0) {
                return -1;
            }
            path_pop(&c->path);
            break;
        }
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
            if (!json_is_string(v)) {
                return fail_at(c, key, "expected a base64 string, got %s", jtype(v));
            }
            size_t len = json_string_length(v);
            uint8_t *dst = arena_alloc(&c->mem, rt_base64_decoded_max(len));
            long n = rt_base64_decode(json_string_value(v), len, dst);
            if (n < 0) {
                return fail_at(c, key, "not valid base64");
            }
            av->bytes_value.data = n > 0 ? dst : NULL;
            av->bytes_value.len = (size_t)n;
            break;
        }
        }
        av->value_case = kinds[k].which;
    }
    return 0;
}

static int conv_kv(in_ctx *c, const json_t *obj, void *msg)
{
    KeyValue *kv = msg;
    opentelemetry__proto__common__v1__key_value__init(kv);
    const char *key;
    json_t *v;
    if (get_string(c, obj, "key", NULL, &kv->key) != 0 ||
        get_object(c, obj, "value", NULL, &v, &key) != 0) {
        return -1;
    }
    if (v != NULL) {
        kv->value = arena_alloc(&c->mem, sizeof(AnyValue));
        path_push(&c->path, key);
        if (conv_any(c, v, kv->value) != 0) {
            return -1;
        }
        path_pop(&c->path);
    }
    return 0;
}

static int conv_event(in_ctx *c, const json_t *obj, void *msg)
{
    Event *ev = msg;
    opentelemetry__proto__trace__v1__span__event__init(ev);
    if (get_u64(c, obj, "timeUnixNano", "time_unix_nano", &ev->time_unix_nano) != 0 ||
        get_string(c, obj, "name", NULL, &ev->name) != 0 || GET_ATTRIBUTES(c, obj, ev) != 0 ||
        get_u32(c, obj, "droppedAttributesCount", "dropped_attributes_count",
                &ev->dropped_attributes_count) != 0) {
        return -1;
    }
    return 0;
}

static int conv_link(in_ctx *c, const json_t *obj, void *msg)
{
    Link *l = msg;
    opentelemetry__proto__trace__v1__span__link__init(l);
    if (get_id(c, obj, "traceId", "trace_id", TRACE_ID_LEN, &l->trace_id) != 0 ||
        get_id(c, obj, "spanId", "span_id", SPAN_ID_LEN, &l->span_id) != 0 ||
        get_string(c, obj, "traceState", "trace_state", &l->trace_state) != 0 ||
        GET_ATTRIBUTES(c, obj, l) != 0 ||
        get_u32(c, obj, "droppedAttributesCount", "dropped_attributes_count",
                &l->dropped_attributes_count) != 0 ||
        get_u32(c, obj, "flags", NULL, &l->flags) != 0) {
        return -1;
    }
    return 0;
}

static const char *const span_kind_names[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
};

static const char *const status_code_names[] = {
    "STATUS_CODE_UNSET",
    "STATUS_CODE_OK",
    "STATUS_CODE_ERROR",
};

static int conv_status(in_ctx *c, const json_t *obj, void *msg)
{
    Status *st = msg;
    opentelemetry__proto__trace__v1__status__init(st);
    int code = 0;
    if (get_string(c, obj, "message", NULL, &st->message) != 0 ||
        get_enum(c, obj, "code", NULL, status_code_names,
                 sizeof(status_code_names) / sizeof(status_code_names[0]), &code) != 0) {
        return -1;
    }
    st->code = code;
    return 0;
}

/* Convert the message-typed field camel/snake of obj with fn into a new arena struct. */
static int get_message(in_ctx *c, const json_t *obj, const char *camel, const char *snake,
                       size_t size, conv_fn fn, void **out)
{
    const char *key;
    json_t *v;
    if (get_object(c, obj, camel, snake, &v, &key) != 0) {
        return -1;
    }
    if (v == NULL) {
        return 0;
    }
    void *msg = arena_alloc(&c->mem, size);
    path_push(&c->path, key);
    if (fn(c, v, msg) != 0) {
        return -1;
    }
    path_pop(&c->path);
    *out = msg;
    return 0;
}

static int conv_span(in_ctx *c, const json_t *obj, void *msg)
{
    Span *s = msg;
    opentelemetry__proto__trace__v1__span__init(s);
    int kind = 0;
    if (get_id(c, obj, "traceId", "trace_id", TRACE_ID_LEN, &s->trace_id) != 0 ||
        get_id(c, obj, "spanId", "span_id", SPAN_ID_LEN, &s->span_id) != 0 ||
        get_string(c, obj, "traceState", "trace_state", &s->trace_state) != 0 ||
        get_id(c, obj, "parentSpanId", "parent_span_id", SPAN_ID_LEN, &s->parent_span_id) != 0 ||
        get_string(c, obj, "name", NULL, &s->name) != 0 ||
        get_enum(c, obj, "kind", NULL, span_kind_names,
                 sizeof(span_kind_names) / sizeof(span_kind_names[0]), &kind) != 0 ||
        get_u64(c, obj, "startTimeUnixNano", "start_time_unix_nano", &s->start_time_unix_nano) !=
            0 ||
        get_u64(c, obj, "endTimeUnixNano", "end_time_unix_nano", &s->end_time_unix_nano) != 0 ||
        GET_ATTRIBUTES(c, obj, s) != 0 ||
        get_u32(c, obj, "droppedAttributesCount", "dropped_attributes_count",
                &s->dropped_attributes_count) != 0 ||
        GET_REPEATED(c, obj, "events", NULL, Event, conv_event, s, events) != 0 ||
        get_u32(c, obj, "droppedEventsCount", "dropped_events_count", &s->dropped_events_count) !=
            0 ||
        GET_REPEATED(c, obj, "links", NULL, Link, conv_link, s, links) != 0 ||
        get_u32(c, obj, "droppedLinksCount", "dropped_links_count", &s->dropped_links_count) != 0 ||
        get_message(c, obj, "status", NULL, sizeof(Status), conv_status, (void **)&s->status) !=
            0 ||
        get_u32(c, obj, "flags", NULL, &s->flags) != 0) {
        return -1;
    }
    s->kind = kind;
    return 0;
}

static int conv_scope(in_ctx *c, const json_t *obj, void *msg)
{
    Scope *sc = msg;
    opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
    if (get_string(c, obj, "name", NULL, &sc->name) != 0 ||
        get_string(c, obj, "version", NULL, &sc->version) != 0 || GET_ATTRIBUTES(c, obj, sc) != 0 ||
        get_u32(c, obj, "droppedAttributesCount", "dropped_attributes_count",
                &sc->dropped_attributes_count) != 0) {
        return -1;
    }
    return 0;
}

static int conv_scope_spans(in_ctx *c, const json_t *obj, void *msg)
{
    ScopeSpans *ss = msg;
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    if (get_message(c, obj, "scope", NULL, sizeof(Scope), conv_scope, (void **)&ss->scope) != 0 ||
        GET_REPEATED(c, obj, "spans", NULL, Span, conv_span, ss, spans) != 0 ||
        get_string(c, obj, "schemaUrl", "schema_url", &ss->schema_url) != 0) {
        return -1;
    }
    return 0;
}

static int conv_resource(in_ctx *c, const json_t *obj, void *msg)
{
    Resource *r = msg;
    opentelemetry__proto__resource__v1__resource__init(r);
    if (GET_ATTRIBUTES(c, obj, r) != 0 ||
        get_u32(c, obj, "droppedAttributesCount", "dropped_attributes_count",
                &r->dropped_attributes_count) != 0) {
        return -1;
    }
    return 0;
}

static int conv_resource_spans(in_ctx *c, const json_t *obj, void *msg)
{
    ResourceSpans *rs = msg;
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    if (get_message(c, obj, "resource", NULL, sizeof(Resource), conv_resource,
                    (void **)&rs->resource) != 0 ||
        GET_REPEATED(c, obj, "scopeSpans", "scope_spans", ScopeSpans, conv_scope_spans, rs,
                     scope_spans) != 0 ||
        get_string(c, obj, "schemaUrl", "schema_url", &rs->schema_url) != 0) {
        return -1;
    }
    return 0;
}

/* Reject JSON text nested deeper than RT_OTLP_JSON_MAX_DEPTH before jansson (whose own limit is
 * far higher) and our recursive conversion see it. Brackets inside strings do not count. */
static int check_json_depth(const char *s, size_t len, char *err, size_t errlen)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\') {
                i++;
            } else if (ch == '"') {
                in_str = false;
            }
            continue;
        }
        if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > RT_OTLP_JSON_MAX_DEPTH) {
                size_t line = 1;
                size_t col = 1;
                for (size_t j = 0; j < i; j++) {
                    col++;
                    if (s[j] == '\n') {
                        line++;
                        col = 1;
                    }
                }
                set_err(err, errlen,
                        "invalid JSON at line %zu column %zu: nested deeper than %d levels", line,
                        col, RT_OTLP_JSON_MAX_DEPTH);
                return -1;
            }
        } else if (ch == '}' || ch == ']') {
            if (depth > 0) {
                depth--;
            }
        }
    }
    return 0;
}

int rt_otlp_json_to_pb(const char *json, size_t len, rt_buf *out, char *err, size_t errlen)
{
    in_ctx c = {.err = err, .errlen = errlen};
    json_t *root = NULL;
    json_error_t jerr;
    Request req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;

    if (check_json_depth(json, len, err, errlen) != 0) {
        goto fail;
    }
    /* Flags 0: top level must be an object or array (no JSON_DECODE_ANY), no NUL in strings
     * (protobuf-c strings are NUL-terminated), trailing garbage rejected. */
    root = json_loadb(json, len, 0, &jerr);
    if (root == NULL) {
        set_err(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                jerr.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        in_fail(&c, "expected a JSON object, got %s", jtype(root));
        goto fail;
    }
    if (GET_REPEATED(&c, root, "resourceSpans", "resource_spans", ResourceSpans,
                     conv_resource_spans, &req, resource_spans) != 0) {
        goto fail;
    }
    size_t need = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *dst = rt_buf_reserve(out, need);
    size_t wrote = protobuf_c_message_pack(&req.base, dst);
    out->len += wrote;
    arena_free(&c.mem);
    json_decref(root);
    return 0;

fail:
    arena_free(&c.mem);
    json_decref(root); /* NULL-safe */
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * protobuf -> JSON
 * ------------------------------------------------------------------------------------------- */

typedef struct out_ctx {
    rt_buf *out;
    path path;
    int depth; /* open JSON containers */
    char *err;
    size_t errlen;
} out_ctx;

static int out_fail(out_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int out_fail(out_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(&c->path, c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not valid UTF-8
 * (overlong forms, surrogates and code points above U+10FFFF are invalid, as in jansson). */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t b = s[0];
    size_t len;
    uint32_t cp;
    if (b < 0x80) {
        return 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
        cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        cp = b & 0x0F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        cp = b & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

/* Append s as a quoted JSON string. Invalid UTF-8 is replaced by U+FFFD when `replace`, else the
 * function returns -1 (having appended a partial string the caller must discard). */
static int json_quote(rt_buf *b, const char *str, size_t n, bool replace)
{
    const uint8_t *s = (const uint8_t *)str;
    rt_buf_append_byte(b, '"');
    size_t run = 0; /* start of the pending run of bytes that need no escaping */
    size_t i = 0;
    while (i < n) {
        uint8_t ch = s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\' && ch < 0x80) {
            i++;
            continue;
        }
        if (ch >= 0x80) {
            size_t len = utf8_seq(s + i, n - i);
            if (len > 0) {
                i += len;
                continue;
            }
            if (!replace) {
                return -1;
            }
            rt_buf_append(b, s + run, i - run);
            rt_buf_append(b, "\xEF\xBF\xBD", 3);
            run = ++i;
            continue;
        }
        rt_buf_append(b, s + run, i - run);
        switch (ch) {
        case '"':
            rt_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rt_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rt_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rt_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rt_buf_append(b, "\\t", 2);
            break;
        case '\b':
            rt_buf_append(b, "\\b", 2);
            break;
        case '\f':
            rt_buf_append(b, "\\f", 2);
            break;
        default:
            rt_buf_printf(b, "\\u%04x", ch);
            break;
        }
        run = ++i;
    }
    rt_buf_append(b, s + run, n - run);
    rt_buf_append_byte(b, '"');
    return 0;
}

static int w_open(out_ctx *c, char ch)
{
    if (++c->depth > RT_OTLP_JSON_MAX_DEPTH) {
        return out_fail(c, "nested deeper than %d JSON levels", RT_OTLP_JSON_MAX_DEPTH);
    }
    rt_buf_append_byte(c->out, (uint8_t)ch);
    return 0;
}

static void w_close(out_ctx *c, char ch)
{
    c->depth--;
    rt_buf_append_byte(c->out, (uint8_t)ch);
}

/* Start member `key` of the object being written; *first tracks whether a comma is needed. */
static void w_key(out_ctx *c, bool *first, const char *key)
{
    if (!*first) {
        rt_buf_append_byte(c->out, ',');
    }
    *first = false;
    rt_buf_append_byte(c->out, '"');
    rt_buf_append_str(c->out, key);
    rt_buf_append(c->out, "\":", 2);
}

static int w_string(out_ctx *c, const char *key, const char *s)
{
    if (json_quote(c->out, s, strlen(s), false) != 0) {
        path_push(&c->path, key);
        out_fail(c, "string is not valid UTF-8");
        path_pop(&c->path);
        return -1;
    }
    return 0;
}

/* A string field, omitted when empty (the proto3 default). */
static int w_str_field(out_ctx *c, bool *first, const char *key, const char *s)
{
    if (s == NULL || s[0] == '\0') {
        return 0;
    }
    w_key(c, first, key);
    return w_string(c, key, s);
}

static void w_u32_field(out_ctx *c, bool *first, const char *key, uint32_t v)
{
    if (v != 0) {
        w_key(c, first, key);
        rt_buf_printf(c->out, "%" PRIu32, v);
    }
}

static void w_u64_field(out_ctx *c, bool *first, const char *key, uint64_t v)
{
    if (v != 0) {
        w_key(c, first, key);
        rt_buf_printf(c->out, "\"%" PRIu64 "\"", v);
    }
}

static void w_int_field(out_ctx *c, bool *first, const char *key, int v)
{
    if (v != 0) {
        w_key(c, first, key);
        rt_buf_printf(c->out, "%d", v);
    }
}

/* A trace/span id as lowercase hex; it must be empty or exactly `want` bytes so that the JSON
 * we write is JSON we accept. */
static int w_id_field(out_ctx *c, bool *first, const char *key, const ProtobufCBinaryData *id,
                      size_t want)
{
    static const char digits[] = "0123456789abcdef";
    if (id->len == 0) {
        return 0;
    }
    if (id->len != want) {
        path_push(&c->path, key);
        out_fail(c, "expected %zu bytes, got %zu", want, id->len);
        path_pop(&c->path);
        return -1;
    }
    w_key(c, first, key);
    char *dst = (char *)rt_buf_reserve(c->out, want * 2 + 2);
    size_t o = 0;
    dst[o++] = '"';
    for (size_t i = 0; i < want; i++) {
        dst[o++] = digits[id->data[i] >> 4];
        dst[o++] = digits[id->data[i] & 15];
    }
    dst[o++] = '"';
    c->out->len += o;
    return 0;
}

/* A double: the shortest %g form that reads back to the same bits, always with a '.' or an
 * exponent so that -0.0 keeps its sign and a reader sees a real; NaN and infinities as the
 * proto3 JSON strings. */
static void w_double(out_ctx *c, double d)
{
    if (isnan(d)) {
        rt_buf_append_str(c->out, "\"NaN\"");
        return;
    }
    if (isinf(d)) {
        rt_buf_append_str(c->out, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d) {
            break;
        }
    }
    rt_buf_append_str(c->out, tmp);
    if (strpbrk(tmp, ".e") == NULL) {
        rt_buf_append(c->out, ".0", 2);
    }
}

/* Writes one message (an object) from the protobuf-c struct at msg. */
typedef int (*write_fn)(out_ctx *c, const void *msg);

/* A repeated message field as an array, omitted when empty. */
static int w_repeated(out_ctx *c, bool *first, const char *key, size_t n, void *const *msgs,
                      write_fn fn)
{
    if (n == 0) {
        return 0;
    }
    w_key(c, first, key);
    path_push(&c->path, key);
    if (w_open(c, '[') != 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        path_index(&c->path, i);
        if (i > 0) {
            rt_buf_append_byte(c->out, ',');
        }
        if (fn(c, msgs[i]) != 0) {
            return -1;
        }
    }
    w_close(c, ']');
    path_pop(&c->path);
    return 0;
}

/* A singular message field, written (possibly as {}) whenever it is present. */
static int w_message(out_ctx *c, bool *first, const char *key, const void *msg, write_fn fn)
{
    if (msg == NULL) {
        return 0;
    }
    w_key(c, first, key);
    path_push(&c->path, key);
    if (fn(c, msg) != 0) {
        return -1;
    }
    path_pop(&c->path);
    return 0;
}

static int write_kv(out_ctx *c, const void *msg);

#define W_REPEATED(c, first, key, msgp, field_, fn)                                                \
    w_repeated((c), (first), (key), (msgp)->n_##field_, (void *const *)(msgp)->field_, (fn))

static int write_any(out_ctx *c, const void *msg)
{
    const AnyValue *av = msg;
    bool first = true;
    if (w_open(c, '{') != 0) {
        return -1;
    }
    switch (av->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        w_key(c, &first, "stringValue");
        if (w_string(c, "stringValue", av->string_value) != 0) {
            return -1;
        }
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        w_key(c, &first, "boolValue");
        rt_buf_append_str(c->out, av->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        w_key(c, &first, "intValue");
        rt_buf_printf(c->out, "\"%" PRId64 "\"", av->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        w_key(c, &first, "doubleValue");
        w_double(c, av->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        bool is_array =
            av->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        const char *key = is_array ? "arrayValue" : "kvlistValue";
        bool inner_first = true;
        w_key(c, &first, key);
        path_push(&c->path, key);
        if (w_open(c, '{') != 0) {
            return -1;
        }
        int rc = 0;
        if (is_array && av->array_value != NULL) {
            rc = W_REPEATED(c, &inner_first, "values", av->array_value, values, write_any);
        } else if (!is_array && av->kvlist_value != NULL) {
            rc = W_REPEATED(c, &inner_first, "values", av->kvlist_value, values, write_kv);
        }
        if (rc != 0) {
            return -1;
        }
        w_close(c, '}');
        path_pop(&c->path);
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        w_key(c, &first, "bytesValue");
        rt_buf_append_byte(c->out, '"');
        rt_base64_encode(c->out, av->bytes_value.data, av->bytes_value.len, true);
        rt_buf_append_byte(c->out, '"');
        break;
    default:
        break; /* no value: {} */
    }
    w_close(c, '}');
    return 0;
}

static int write_kv(out_ctx *c, const void *msg)
{
    const KeyValue *kv = msg;
    bool first = true;
    if (w_open(c, '{') != 0 || w_str_field(c, &first, "key", kv->key) != 0 ||
        w_message(c, &first, "value", kv->value, write_any) != 0) {
        return -1;
    }
    w_close(c, '}');
    return 0;
}

static int write_event(out_ctx *c, const void *msg)
{
    const Event *ev = msg;
    bool first = true;
    if (w_open(c, '{') != 0) {
        return -1;
    }
    w_u64_field(c, &first, "timeUnixNano", ev->time_unix_nano);
    if (w_str_field(c, &first, "name", ev->name) != 0 ||
        W_REPEATED(c, &first, "attributes", ev, attributes, write_kv) != 0) {
        return -1;
    }
    w_u32_field(c, &first, "droppedAttributesCount", ev->dropped_attributes_count);
    w_close(c, '}');
    return 0;
}

static int write_link(out_ctx *c, const void *msg)
{
    const Link *l = msg;
    bool first = true;
    if (w_open(c, '{') != 0 || w_id_field(c, &first, "traceId", &l->trace_id, TRACE_ID_LEN) != 0 ||
        w_id_field(c, &first, "spanId", &l->span_id, SPAN_ID_LEN) != 0 ||
        w_str_field(c, &first, "traceState", l->trace_state) != 0 ||
        W_REPEATED(c, &first, "attributes", l, attributes, write_kv) != 0) {
        return -1;
    }
    w_u32_field(c, &first, "droppedAttributesCount", l->dropped_attributes_count);
    w_u32_field(c, &first, "flags", l->flags);
    w_close(c, '}');
    return 0;
}

static int write_status(out_ctx *c, const void *msg)
{
    const Status *st = msg;
    bool first = true;
    if (w_open(c, '{') != 0 || w_str_field(c, &first, "message", st->message) != 0) {
        return -1;
    }
    w_int_field(c, &first, "code", (int)st->code);
    w_close(c, '}');
    return 0;
}

static int write_span(out_ctx *c, const void *msg)
{
    const Span *s = msg;
    bool first = true;
    if (w_open(c, '{') != 0 || w_id_field(c, &first, "traceId", &s->trace_id, TRACE_ID_LEN) != 0 ||
        w_id_field(c, &first, "spanId", &s->span_id, SPAN_ID_LEN) != 0 ||
        w_str_field(c, &first, "traceState", s->trace_state) != 0 ||
        w_id_field(c, &first, "parentSpanId", &s->parent_span_id, SPAN_ID_LEN) != 0 ||
        w_str_field(c, &first, "name", s->name) != 0) {
        return -1;
    }
    w_int_field(c, &first, "kind", (int)s->kind);
    w_u64_field(c, &first, "startTimeUnixNano", s->start_time_unix_nano);
    w_u64_field(c, &first, "endTimeUnixNano", s->end_time_unix_nano);
    if (W_REPEATED(c, &first, "attributes", s, attributes, write_kv) != 0) {
        return -1;
    }
    w_u32_field(c, &first, "droppedAttributesCount", s->dropped_attributes_count);
    if (W_REPEATED(c, &first, "events", s, events, write_event) != 0) {
        return -1;
    }
    w_u32_field(c, &first, "droppedEventsCount", s->dropped_events_count);
    if (W_REPEATED(c, &first, "links", s, links, write_link) != 0) {
        return -1;
    }
    w_u32_field(c, &first, "droppedLinksCount", s->dropped_links_count);
    if (w_message(c, &first, "status", s->status, write_status) != 0) {
        return -1;
    }
    w_u32_field(c, &first, "flags", s->flags);
    w_close(c, '}');
    return 0;
}

static int write_scope(out_ctx *c, const void *msg)
{
    const Scope *sc = msg;
    bool first = true;
    if (w_open(c, '{') != 0 || w_str_field(c, &first, "name", sc->name) != 0 ||
        w_str_field(c, &first, "version", sc->version) != 0 ||
        W_REPEATED(c, &first, "attributes", sc, attributes, write_kv) != 0) {
        return -1;
    }
    w_u32_field(c, &first, "droppedAttributesCount", sc->dropped_attributes_count);
    w_close(c, '}');
    return 0;
}

static int write_scope_spans(out_ctx *c, const void *msg)
{
    const ScopeSpans *ss = msg;
    bool first = true;
    if (w_open(c, '{') != 0 || w_message(c, &first, "scope", ss->scope, write_scope) != 0 ||
        W_REPEATED(c, &first, "spans", ss, spans, write_span) != 0 ||
        w_str_field(c, &first, "schemaUrl", ss->schema_url) != 0) {
        return -1;
    }
    w_close(c, '}');
    return 0;
}

static int write_resource(out_ctx *c, const void *msg)
{
    const Resource *r = msg;
    bool first = true;
    if (w_open(c, '{') != 0 || W_REPEATED(c, &first, "attributes", r, attributes, write_kv) != 0) {
        return -1;
    }
    w_u32_field(c, &first, "droppedAttributesCount", r->dropped_attributes_count);
    w_close(c, '}');
    return 0;
}

static int write_resource_spans(out_ctx *c, const void *msg)
{
    const ResourceSpans *rs = msg;
    bool first = true;
    if (w_open(c, '{') != 0 || w_message(c, &first, "resource", rs->resource, write_resource) ||
        W_REPEATED(c, &first, "scopeSpans", rs, scope_spans, write_scope_spans) != 0 ||
        w_str_field(c, &first, "schemaUrl", rs->schema_url) != 0) {
        return -1;
    }
    w_close(c, '}');
    return 0;
}

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t acc = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        acc |= (uint64_t)(b & 0x7F) << shift;
        if ((b & 0x80) == 0) {
            *v = acc;
            return true;
        }
    }
    return false;
}

/* Walk the encoded message of type d and return the deepest message nesting found, stopping as
 * soon as it exceeds RT_OTLP_JSON_MAX_DEPTH. Malformed input just ends the walk: reporting it is
 * protobuf-c's job; this only keeps its recursive decoder off pathological depths. */
static int pb_depth(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                    int depth)
{
    int deepest = depth;
    while (p < end) {
        uint64_t key;
        uint64_t v;
        if (!read_varint(&p, end, &key)) {
            break;
        }
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &v)) {
                return deepest;
            }
            break;
        case 1:
            p += (size_t)(end - p) < 8 ? (size_t)(end - p) : 8;
            break;
        case 5:
            p += (size_t)(end - p) < 4 ? (size_t)(end - p) : 4;
            break;
        case 2: {
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p)) {
                return deepest;
            }
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3))
                    : NULL;
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (depth + 1 > RT_OTLP_JSON_MAX_DEPTH) {
                    return depth + 1;
                }
                int sub = pb_depth(f->descriptor, p, p + v, depth + 1);
                if (sub > deepest) {
                    deepest = sub;
                }
                if (deepest > RT_OTLP_JSON_MAX_DEPTH) {
                    return deepest;
                }
            }
            p += v;
            break;
        }
        default:
            return deepest;
        }
    }
    return deepest;
}

static void *pb_alloc(void *data, size_t size)
{
    return rt_malloc(size);
}

static void pb_free(void *data, void *ptr)
{
    free(ptr);
}

int rt_otlp_pb_to_json(const uint8_t *pb, size_t len, rt_buf *out, char *err, size_t errlen)
{
    /* protobuf-c allocates through our wrappers so OOM aborts the same way everywhere. */
    ProtobufCAllocator alloc = {.alloc = pb_alloc, .free = pb_free, .allocator_data = NULL};
    const ProtobufCMessageDescriptor *desc =
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    out_ctx c = {.out = out, .err = err, .errlen = errlen};
    size_t start = out->len;
    Request *req = NULL;
    bool first = true;

    if (pb_depth(desc, pb, pb + len, 1) > RT_OTLP_JSON_MAX_DEPTH) {
        set_err(err, errlen, "request: protobuf messages nested deeper than %d levels",
                RT_OTLP_JSON_MAX_DEPTH);
        goto fail;
    }
    req = (Request *)protobuf_c_message_unpack(desc, &alloc, len, pb);
    if (req == NULL) {
        set_err(err, errlen, "request: not a valid protobuf ExportTraceServiceRequest");
        goto fail;
    }
    if (w_open(&c, '{') != 0 ||
        W_REPEATED(&c, &first, "resourceSpans", req, resource_spans, write_resource_spans) != 0) {
        goto fail;
    }
    w_close(&c, '}');
    protobuf_c_message_free_unpacked(&req->base, &alloc);
    return 0;

fail:
    if (req != NULL) {
        protobuf_c_message_free_unpacked(&req->base, &alloc);
    }
    out->len = start; /* nothing half-written survives an error */
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------------------------- */

void rt_otlp_json_response(int64_t rejected_spans, const char *error_message, rt_buf *out)
{
    bool has_msg = error_message != NULL && error_message[0] != '\0';
    if (rejected_spans == 0 && !has_msg) {
        rt_buf_append(out, "{}", 2);
        return;
    }
    rt_buf_append_str(out, "{\"partialSuccess\":{");
    if (rejected_spans != 0) {
        rt_buf_printf(out, "\"rejectedSpans\":\"%" PRId64 "\"", rejected_spans);
    }
    if (has_msg) {
        if (rejected_spans != 0) {
            rt_buf_append_byte(out, ',');
        }
        rt_buf_append_str(out, "\"errorMessage\":");
        json_quote(out, error_message, strlen(error_message), true);
    }
    rt_buf_append(out, "}}", 2);
}

void rt_otlp_json_status(int code, const char *message, rt_buf *out)
{
    rt_buf_printf(out, "{\"code\":%d,\"message\":", code);
    if (message == NULL) {
        message = "";
    }
    json_quote(out, message, strlen(message), true);
    rt_buf_append_byte(out, '}');
}
