/* test_policy_agent.c - agent-aware attribute semantics of the policy engine: span_count's
 * span_filter, numeric_attribute aggregates, matching inside array values, and `scope` on the
 * attribute policies; their interaction with and / not / drop; config errors for every new key
 * naming its line; the OTel fixtures still parse; duplicates are not counted by a filter (through
 * the real trace buffer).
 *
 * Spans are encoded here by hand (AnyValues of every kind, arrays nested or not, span names,
 * parent ids, two resources) and walked with rt_otlp_scan, so the engine sees exactly what the
 * buffer hands it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>

#include "buf.h"
#include "config.h"
#include "otlp_scan.h"
#include "pb.h"
#include "policy.h"
#include "policy_internal.h"
#include "trace_buffer.h"

/* ---- building traces ----------------------------------------------------------------------- */

typedef struct tval tval;
struct tval {
    char kind; /* 's' string, 'i' int, 'd' double, 'b' bool, 'a' array, 'k' kvlist {s: s} */
    const char *s;
    int64_t i;
    double d;
    int b;
    const tval *el; /* 'a' */
    size_t n;
};

typedef struct tkv {
    const char *key; /* NULL ends a list */
    tval v;
} tkv;

#define ES(x)                                                                                      \
    {                                                                                              \
        .kind = 's', .s = (x)                                                                      \
    }
#define EI(x)                                                                                      \
    {                                                                                              \
        .kind = 'i', .i = (x)                                                                      \
    }
#define ED(x)                                                                                      \
    {                                                                                              \
        .kind = 'd', .d = (x)                                                                      \
    }
#define EB(x)                                                                                      \
    {                                                                                              \
        .kind = 'b', .b = (x)                                                                      \
    }
#define EK(x)                                                                                      \
    {                                                                                              \
        .kind = 'k', .s = (x)                                                                      \
    }
#define EA(...)                                                                                    \
    {                                                                                              \
        .kind = 'a', .el = (const tval[]){__VA_ARGS__},                                            \
        .n = sizeof((const tval[]){__VA_ARGS__}) / sizeof(tval)                                    \
    }
#define KS(k, x)   ((tkv){.key = (k), .v = ES(x)})
#define KI(k, x)   ((tkv){.key = (k), .v = EI(x)})
#define KD(k, x)   ((tkv){.key = (k), .v = ED(x)})
#define KB(k, x)   ((tkv){.key = (k), .v = EB(x)})
#define KA(k, ...) ((tkv){.key = (k), .v = EA(__VA_ARGS__)})
#define KA0(k)     ((tkv){.key = (k), .v = {.kind = 'a', .n = 0}})
/* An array from a static `arr`: compound literals inside a function die with their block, so
 * helpers that return a trace must use these. */
#define KAS(k, arr)                                                                                \
    ((tkv){.key = (k), .v = {.kind = 'a', .el = (arr), .n = sizeof(arr) / sizeof(tval)}})

static const tval fr_tool_call[] = {ES("tool_call")};
static const tval tok_mixed[] = {EI(40), ES("9999"), ED(9.5)};

typedef struct tspan {
    const char *name;
    int res;   /* which of the trace's two resources it sits under */
    bool root; /* no parent_span_id */
    tkv attrs[6];
} tspan;

typedef struct ttrace {
    uint8_t id[16];
    tkv res[2][4];
    size_t n;
    tspan spans[48];
} ttrace;

static void put_any(rt_buf *out, const tval *v)
{
    switch (v->kind) {
    case 's':
        rt_pb_append_len_field(out, 1, v->s, strlen(v->s));
        break;
    case 'b':
        rt_pb_append_tag(out, 2, RT_PB_WT_VARINT);
        rt_pb_append_varint(out, (uint64_t)v->b);
        break;
    case 'i':
        rt_pb_append_tag(out, 3, RT_PB_WT_VARINT);
        rt_pb_append_varint(out, (uint64_t)v->i);
        break;
    case 'd': {
        uint64_t bits;
        memcpy(&bits, &v->d, sizeof bits);
        rt_pb_append_tag(out, 4, RT_PB_WT_FIXED64);
        rt_pb_append_fixed64(out, bits);
        break;
    }
    case 'a': {
        rt_buf arr = RT_BUF_INIT;
        for (size_t i = 0; i < v->n; i++) {
            rt_buf any = RT_BUF_INIT;
            put_any(&any, &v->el[i]);
            rt_pb_append_len_field(&arr, 1, any.data, any.len);
            rt_buf_free(&any);
        }
        rt_pb_append_len_field(out, 5, arr.data, arr.len);
        rt_buf_free(&arr);
        break;
    }
    case 'k': {
        rt_buf any = RT_BUF_INIT, kv = RT_BUF_INIT, kvl = RT_BUF_INIT;
        rt_pb_append_len_field(&any, 1, v->s, strlen(v->s));
        rt_pb_append_len_field(&kv, 1, v->s, strlen(v->s));
        rt_pb_append_len_field(&kv, 2, any.data, any.len);
        rt_pb_append_len_field(&kvl, 1, kv.data, kv.len);
        rt_pb_append_len_field(out, 6, kvl.data, kvl.len);
        rt_buf_free(&any);
        rt_buf_free(&kv);
        rt_buf_free(&kvl);
        break;
    }
    default:
        fail();
    }
}

static void put_kv(rt_buf *out, uint32_t field, const tkv *a)
{
    rt_buf any = RT_BUF_INIT, kv = RT_BUF_INIT;
    put_any(&any, &a->v);
    rt_pb_append_len_field(&kv, 1, a->key, strlen(a->key));
    rt_pb_append_len_field(&kv, 2, any.data, any.len);
    rt_pb_append_len_field(out, field, kv.data, kv.len);
    rt_buf_free(&any);
    rt_buf_free(&kv);
}

static void put_span(rt_buf *out, const ttrace *t, const tspan *s, size_t idx)
{
    rt_buf b = RT_BUF_INIT;
    uint8_t sid[8] = {0, 0, 0, 0, 0, 0, (uint8_t)(idx >> 8), (uint8_t)(idx + 1)};
    uint8_t parent[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    const char *name = s->name ? s->name : "op";
    rt_pb_append_len_field(&b, 1, t->id, 16);
    rt_pb_append_len_field(&b, 2, sid, 8);
    if (!s->root) {
        rt_pb_append_len_field(&b, 4, parent, 8);
    }
    rt_pb_append_len_field(&b, 5, name, strlen(name));
    rt_pb_append_tag(&b, 7, RT_PB_WT_FIXED64);
    rt_pb_append_fixed64(&b, 1000);
    rt_pb_append_tag(&b, 8, RT_PB_WT_FIXED64);
    rt_pb_append_fixed64(&b, 2000);
    for (const tkv *a = s->attrs; a->key != NULL; a++) {
        put_kv(&b, 9, a);
    }
    rt_pb_append_len_field(out, 2, b.data, b.len);
    rt_buf_free(&b);
}

/* An ExportTraceServiceRequest: one ResourceSpans per resource used, one ScopeSpans each. */
static void encode_trace(const ttrace *t, rt_buf *req)
{
    for (int r = 0; r < 2; r++) {
        rt_buf spans = RT_BUF_INIT, res = RT_BUF_INIT, rs = RT_BUF_INIT;
        for (size_t i = 0; i < t->n; i++) {
            if (t->spans[i].res == r) {
                put_span(&spans, t, &t->spans[i], i);
            }
        }
        if (spans.len > 0) {
            for (const tkv *a = t->res[r]; a->key != NULL; a++) {
                put_kv(&res, 1, a);
            }
            rt_pb_append_len_field(&rs, 1, res.data, res.len);
            rt_pb_append_len_field(&rs, 2, spans.data, spans.len);
            rt_pb_append_len_field(req, 1, rs.data, rs.len);
        }
        rt_buf_free(&spans);
        rt_buf_free(&res);
        rt_buf_free(&rs);
    }
}

static void trace_init(ttrace *t)
{
    memset(t, 0, sizeof *t);
    t->id[0] = 0x42;
    t->id[15] = 7;
}

/* Append a span; returns it so attributes can be set. */
static tspan *add_span(ttrace *t, const char *name, bool root, int res)
{
    assert_true(t->n < sizeof t->spans / sizeof t->spans[0]);
    tspan *s = &t->spans[t->n++];
    memset(s, 0, sizeof *s);
    s->name = name;
    s->root = root;
    s->res = res;
    return s;
}

/* Feed every span of `t` to a fresh per-trace state and decide. */
static rt_policy_result run(rt_policy_engine *e, const ttrace *t)
{
    rt_buf req = RT_BUF_INIT;
    encode_trace(t, &req);
    size_t sz = rt_policy_state_size(e);
    assert_int_equal(sz % 8, 0);
    void *st = malloc(sz + 8);
    memset(st, 0xa5, sz + 8); /* init must clear whatever was there */
    rt_policy_state_init(e, st);

    rt_trace_summary sum;
    memset(&sum, 0, sizeof sum);
    memcpy(sum.trace_id, t->id, 16);
    sum.min_start_ns = UINT64_MAX;
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, req.data, req.len);
    int rc;
    while ((rc = rt_otlp_scan_next(&it, &v)) == 1) {
        rt_policy_observe(e, st, &v);
        sum.span_count++;
        sum.bytes += v.span.len;
        if (v.start_ns < sum.min_start_ns) {
            sum.min_start_ns = v.start_ns;
        }
        if (v.end_ns > sum.max_end_ns) {
            sum.max_end_ns = v.end_ns;
        }
        if (v.parent_span_id.len == 0) {
            sum.root_seen = true;
        }
    }
    assert_int_equal(rc, 0);
    assert_int_equal(sum.span_count, t->n);
    rt_policy_result res;
    memset(&res, 0, sizeof res);
    rt_decision d = rt_policy_decide(e, st, &sum, 0, &res);
    assert_int_equal(d, res.decision);
    free(st);
    rt_buf_free(&req);
    return res;
}

static rt_decision decide(rt_policy_engine *e, const ttrace *t)
{
    return run(e, t).decision;
}

/* ---- config helpers ------------------------------------------------------------------------ */

typedef struct fixture {
    rt_policy_set *set;
    rt_policy_engine *e;
} fixture;

static rt_policy_set *parse(const char *yaml, rt_cfg_ctx *ctx)
{
    rt_cfg_doc *doc = rt_cfg_doc_load_string(ctx, yaml, strlen(yaml));
    assert_non_null(doc);
    rt_policy_set *set = rt_policy_set_parse(ctx, rt_cfg_node_get(rt_cfg_doc_root(doc), "policies"),
                                             "tail_sampling.policies");
    rt_cfg_doc_free(doc); /* the set must not keep pointers into the document */
    return set;
}

static void setup(fixture *f, const char *yaml)
{
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, "t.yaml");
    f->set = parse(yaml, &ctx);
    if (f->set == NULL) {
        print_error("unexpected config error: %s\nconfig:\n%s\n", ctx.first_error, yaml);
    }
    assert_non_null(f->set);
    assert_int_equal(ctx.n_errors, 0);
    rt_cfg_ctx_free(&ctx);
    f->e = rt_policy_engine_new(f->set, 1, false, 0, NULL);
}

static void teardown(fixture *f)
{
    rt_policy_engine_free(f->e);
    rt_policy_set_free(f->set);
    memset(f, 0, sizeof *f);
}

/* The config must fail; the first error must start with `prefix` and contain `needle`. */
static void expect_error(const char *yaml, const char *prefix, const char *needle)
{
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, "t.yaml");
    rt_policy_set *set = parse(yaml, &ctx);
    if (set != NULL || strncmp(ctx.first_error, prefix, strlen(prefix)) != 0 ||
        strstr(ctx.first_error, needle) == NULL) {
        print_error("config:\n%s\nwant prefix \"%s\" containing \"%s\"\ngot: \"%s\"\n", yaml,
                    prefix, needle, ctx.first_error);
        rt_policy_set_free(set);
        rt_cfg_ctx_free(&ctx);
        fail();
    }
    rt_cfg_ctx_free(&ctx);
}

/* An agent turn: root invoke_agent (tenant.id on it), `chats` chat spans, `tools` execute_tool
 * spans each with an MCP tools/call client span under it. */
static void agent_turn(ttrace *t, int chats, int tools, const char *tenant)
{
    trace_init(t);
    tspan *s = add_span(t, "invoke_agent planner", true, 0);
    s->attrs[0] = KS("tenant.id", tenant);
    s->attrs[1] = KS("gen_ai.agent.name", "planner");
    for (int i = 0; i < chats; i++) {
        s = add_span(t, "chat gpt-x", false, 0);
        s->attrs[0] = KS("gen_ai.operation.name", "chat");
        s->attrs[1] = KI("gen_ai.usage.input_tokens", 100);
        s->attrs[2] = KAS("gen_ai.response.finish_reasons", fr_tool_call);
    }
    for (int i = 0; i < tools; i++) {
        s = add_span(t, "execute_tool search", false, 0);
        s->attrs[0] = KS("gen_ai.operation.name", "execute_tool");
        s->attrs[1] = KS("gen_ai.tool.name", "search");
        s = add_span(t, "tools/call search", false, 1);
        s->attrs[0] = KS("mcp.method.name", "tools/call");
    }
}

/* ---- one attribute walk per span ----------------------------------------------------------- */

/* The resource index is kept across spans and traces: a new request in the same (reused) memory
 * with a resource of the same length must not be read through the old index. */
static void test_resource_index_follows_the_bytes_not_the_address(void **state)
{
    (void)state;
    fixture f;
    setup(&f, "policies:\n"
              "  - {name: p, type: string_attribute, string_attribute: "
              "{key: tenant.id, values: [acme], scope: resource}}\n");
    const char *tenants[] = {"acme", "acmf", "acme", "acmf", "acme"};
    for (size_t i = 0; i < sizeof tenants / sizeof tenants[0]; i++) {
        ttrace t;
        trace_init(&t);
        t.res[0][0] = KS("tenant.id", tenants[i]);
        add_span(&t, "root", true, 0);
        add_span(&t, "child", false, 0);
        rt_decision want = i % 2 == 0 ? RT_DECISION_SAMPLED : RT_DECISION_NOT_SAMPLED;
        if (decide(f.e, &t) != want) {
            fail_msg("trace %zu (tenant %s): wrong decision", i, tenants[i]);
        }
    }
    teardown(&f);
}

/* Several policies on the same key and on different keys see what key-by-key lookups saw: the
 * first KeyValue with a key counts, span before resource; keys beyond the index's capacity are
 * still found (looked up one by one). */
static void test_shared_index_and_keys_beyond_its_capacity(void **state)
{
    (void)state;
    rt_buf yaml = RT_BUF_INIT;
    rt_buf_printf(&yaml, "policies:\n"
                         "  - {name: first, type: string_attribute, string_attribute: "
                         "{key: dup, values: [one]}}\n"
                         "  - {name: second, type: string_attribute, string_attribute: "
                         "{key: dup, values: [two]}}\n");
    int n_keys = RT_POL_MAX_KEYS + 4;
    for (int i = 0; i < n_keys; i++) {
        rt_buf_printf(&yaml,
                      "  - {name: k%d, type: string_attribute, string_attribute: "
                      "{key: key.%d, values: [v%d]}}\n",
                      i, i, i);
    }
    rt_buf_append_byte(&yaml, 0);
    fixture f;
    setup(&f, (const char *)yaml.data);
    rt_buf_free(&yaml);
    assert_int_equal(f.set->keys.n, RT_POL_MAX_KEYS);

    /* dup appears twice on the span: "one" first, so only `first` matches. */
    ttrace t;
    trace_init(&t);
    tspan *s = add_span(&t, "root", true, 0);
    s->attrs[0] = KS("dup", "one");
    s->attrs[1] = KS("dup", "two");
    rt_policy_result r = run(f.e, &t);
    assert_int_equal(r.decision, RT_DECISION_SAMPLED);
    assert_string_equal(rt_policy_set_name(f.set, (size_t)r.policy), "first");

    /* A registered key, one past the capacity and the last, on the span and on the resource. */
    int probe[] = {0, RT_POL_MAX_KEYS - 1, RT_POL_MAX_KEYS, n_keys - 1};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        for (int on_res = 0; on_res < 2; on_res++) {
            char key[32], val[32], name[32];
            snprintf(key, sizeof key, "key.%d", probe[i]);
            snprintf(val, sizeof val, "v%d", probe[i]);
            snprintf(name, sizeof name, "k%d", probe[i]);
            trace_init(&t);
            s = add_span(&t, "root", true, 0);
            s->attrs[0] = KS("other", "x");
            if (on_res) {
                t.res[0][0] = KS(key, val);
            } else {
                s->attrs[1] = KS(key, val);
            }
            r = run(f.e, &t);
            if (r.decision != RT_DECISION_SAMPLED ||
                strcmp(rt_policy_set_name(f.set, (size_t)r.policy), name) != 0) {
                fail_msg("%s on the %s: not kept by %s", key, on_res ? "resource" : "span", name);
            }
        }
    }
    teardown(&f);
}

/* ---- span_count.span_filter ---------------------------------------------------------------- */

static void test_span_filter_counts_only_matching_span_names(void **state)
{
    (void)state;
    fixture f;
    setup(&f, "policies:\n"
              "  - name: tool-heavy\n"
              "    type: span_count\n"
              "    span_count:\n"
              "      min_spans: 5\n"
              "      span_filter: {name_pattern: '^execute_tool( |$)'}\n");
    ttrace t;
    agent_turn(&t, 8, 5, "x"); /* 1 + 8 + 10 spans, 5 tool calls */
    assert_int_equal(decide(f.e, &t), RT_DECISION_SAMPLED);
    agent_turn(&t, 8, 4, "x"); /* 17 spans but only 4 tool calls */
    assert_int_equal(decide(f.e, &t), RT_DECISION_NOT_SAMPLED);
    /* The anchored pattern: "execute_toolbox" and "my execute_tool" are not tool calls, a bare
     * "execute_tool" is. */
    add_span(&t, "execute_toolbox", false, 0);
    add_span(&t, "my execute_tool x", false, 0);
    assert_int_equal(decide(f.e, &t), RT_DECISION_NOT_SAMPLED);
    add_span(&t, "execute_tool", false, 0);
    assert_int_equal(decide(f.e, &t), RT_DECISION_SAMPLED);
    teardown(&f);

    /* Without a filter every span counts (OTel), so the same 4-tool turn passes min_spans 5. */
    setup(&f, "policies:\n  - {name: n, type: span_count, span_count: {min_spans: 5}}\n");
    agent_turn(&t, 8, 4, "x");
    assert_int_equal(decide(f.e, &t), RT_DECISION_SAMPLED);
    teardown(&f);

    /* max_spans bounds the filtered count: 2..3 tool calls. RE2's \s is translated. */
    setup(&f, "policies:\n"
              "  - name: few-tools\n"
              "    type: span_count\n"
              "    span_count:\n"
              "      min_spans: 2\n"
              "      max_spans: 3\n"
              "      span_filter: {name_pattern: '^execute_tool\\s'}\n");
    int want[] = {RT_DECISION_NOT_SAMPLED, RT_DECISION_NOT_SAMPLED, RT_DECISION_SAMPLED,
                  RT_DECISION_SAMPLED, RT_DECISION_NOT_SAMPLED};
    for (int tools = 0; tools < 5; tools++) {
        agent_turn(&t, 3, tools, "x");
        assert_int_equal(decide(f.e, &t), want[tools]);
    }
    teardown(&f);
}

static void test_span_filter_attribute_entries_all_must_match(void **state)
{
    (void)state;
    fixture f;
    setup(&f, "policies:\n"
              "  - name: big-remote-tools\n"
              "    type: span_count\n"
              "    span_count:\n"
              "      min_spans: 2\n"
              "      span_filter:\n"
              "        attributes:\n"
              "          - key: gen_ai.operation.name\n"
              "            values: [execute_tool]\n"
              "          - {key: gen_ai.tool.name, values: ['^web_', fetch], use_regex: true}\n"
              "          - {key: cost, min_value: 10, max_value: 20}\n"
              "          - {key: remote, bool_value: true}\n");
    ttrace t;
    trace_init(&t);
    add_span(&t, "invoke_agent", true, 0);
    tspan *s = add_span(&t, "execute_tool web_search", false, 0);
    s->attrs[0] = KS("gen_ai.operation.name", "execute_tool");
    s->attrs[1] = KS("gen_ai.tool.name", "web_search");
    s->attrs[2] = KI("cost", 10);
    s->attrs[3] = KB("remote", 1);
    /* A second span meets every entry too: the double 19.5 is in [10, 20]; `remote` comes from
     * its resource (span attributes first, then the resource's). */
    s = add_span(&t, "execute_tool fetch", false, 1);
    s->attrs[0] = KS("gen_ai.operation.name", "execute_tool");
    s->attrs[1] = KS("gen_ai.tool.name", "prefetcher"); /* unanchored regex "fetch" */
    s->attrs[2] = KD("cost", 19.5);
    t.res[1][0] = KB("remote", 1);
    assert_int_equal(decide(f.e, &t), RT_DECISION_SAMPLED);

    /* Each entry failing on the second span alone brings the count to 1. */
    struct {
        int attr;
        tkv kv;
    } breaks[] = {
        {0, KS("gen_ai.operation.name", "chat")},
        {1, KS("gen_ai.tool.name", "search_web")},
        {2, KD("cost", 20.5)},
        {2, KI("cost", 9)},
        {2, KS("cost", "15")}, /* a string is not a number */
    };
    for (size_t i = 0; i < sizeof breaks / sizeof breaks[0]; i++) {
        ttrace u = t;
        u.spans[2].attrs[breaks[i].attr] = breaks[i].kv;
        assert_int_equal(decide(f.e, &u), RT_DECISION_NOT_SAMPLED);
    }
    /* Span and resource are separate places (as in OTel): the span's own `remote: false` does
     * not hide the resource's true... */
    ttrace u = t;
    u.spans[2].attrs[3] = KB("remote", 0);
    assert_int_equal(decide(f.e, &u), RT_DECISION_SAMPLED);
    /* ...but with the resource's false too the span fails the entry. */
    u.res[1][0] = KB("remote", 0);
    assert_int_equal(decide(f.e, &u), RT_DECISION_NOT_SAMPLED);
    /* A missing attribute fails its entry. */
    u = t;
    memset(&u.res[1][0], 0, sizeof u.res[1][0]);
    assert_int_equal(decide(f.e, &u), RT_DECISION_NOT_SAMPLED);
    teardown(&f);

    /* name_pattern AND attributes. */
    setup(&f, "policies:\n"
              "  - name: n\n"
              "    type: span_count\n"
              "    span_count:\n"
              "      min_spans: 1\n"
              "      span_filter:\n"
              "        name_pattern: ^chat\n"
              "        attributes: [{key: gen_ai.operation.name, values: [execute_tool]}]\n");
    assert_int_equal(decide(f.e, &t), RT_DECISION_NOT_SAMPLED); /* names are execute_tool... */
    t.spans[1].name = "chat with tools";
    assert_int_equal(decide(f.e, &t), RT_DECISION_SAMPLED);
    teardown(&f);
}

static void test_span_filter_matching_nothing_and_min_zero(void **state)
{
    (void)state;
    fixture f;
    setup(&f, "policies:\n"
              "  - name: zero\n"
              "    type: span_count\n"
              "    span_count: {min_spans: 0, span_filter: {name_pattern: nope}}\n"
              "  - name: one\n"
              "    type: span_count\n"
              "    span_count: {min_spans: 1, span_filter: {name_pattern: nope}}\n");
    ttrace t;
    agent_turn(&t, 4, 6, "x");
    /* 0 >= 0: min_spans 0 samples even when the filter matched no span (documented). */
    rt_policy_result r = run(f.e, &t);
    assert_int_equal(r.decision, RT_DECISION_SAMPLED);
    assert_int_equal(r.policy, 0);
    teardown(&f);

    setup(&f, "policies:\n"
              "  - name: one\n"
              "    type: span_count\n"
              "    span_count: {min_spans: 1, span_filter: {name_pattern: nope}}\n");
    assert_int_equal(decide(f.e, &t), RT_DECISION_NOT_SAMPLED);
    teardown(&f);
}

static void test_span_filter_entry_matches_array_elements(void **state)
{
    (void)state;
    fixture f;
    setup(&f, "policies:\n"
              "  - name: truncated-chats\n"
              "    type: span_count\n"
              "    span_count:\n"
              "      min_spans: 2\n"
              "      span_filter:\n"
              "        attributes: [{key: gen_ai.response.finish_reasons, values: [length]}]\n");
    ttrace t;
    agent_turn(&t, 3, 0, "x"); /* finish_reasons [tool_call] */
    assert_int_equal(decide(f.e, &t), RT_DECISION_NOT_SAMPLED);
    t.spans[1].attrs[2] = KA("gen_ai.response.finish_reasons", ES("stop"), ES("length"));
    assert_int_equal(decide(f.e, &t), RT_DECISION_NOT_SAMPLED); /* one span */
    t.spans[2].attrs[2] = KA("gen_ai.response.finish_reasons", EI(3), ES("length"));
    assert_int_equal(decide(f.e, &t), RT_DECISION_SAMPLED);
    teardown(&f);
}

/* ---- arrays in string / numeric / boolean attributes --------------------------------------- */

static void test_string_attribute_matches_array_elements(void **state)
{
    (void)state;
    fixture f;
    setup(&f,
          "policies:\n"
          "  - {name: s, type: string_attribute, string_attribute: {key: fr, values: [length]}}\n"
          "  - name: re\n"
          "    type: string_attribute\n"
          "    string_attribute: {key: fr, values: ['^len'], enabled_regex_matching: true}\n"
          "  - name: inv\n"
          "    type: string_attribute\n"
          "    string_attribute: {key: fr, values: [length], invert_match: true}\n");
    ttrace t;
    trace_init(&t);
    tspan *s = add_span(&t, "chat", true, 0);

    /* Mixed element types: only the string element is compared. */
    s->attrs[0] = KA("fr", EI(1), EB(1), ED(2.5), ES("length"));
    rt_policy_result r = run(f.e, &t);
    assert_int_equal(r.decision, RT_DECISION_SAMPLED);
    assert_int_equal(r.policy, 0);

    /* Empty array, an array of non-strings, a nested array and a kvlist holding the value: no
     * match (nested containers are not searched), so only the inverted policy (2) samples. */
    tkv none[] = {
        KA0("fr"),
        KA("fr", EI(1), EB(0)),
        KA("fr", EA(ES("length")), ES("stop")),
        KA("fr", EK("length")),
        KS("fr", "stop"),
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        s->attrs[0] = none[i];
        r = run(f.e, &t);
        assert_int_equal(r.decision, RT_DECISION_SAMPLED);
        assert_int_equal(r.policy, 2);
    }
    /* Empty strings inside a span's array never match, like an empty span value. */
    s->attrs[0] = KA("fr", ES(""), ES("lengthy"));
    r = run(f.e, &t);
    assert_int_equal(r.policy, 1); /* regex ^len matches "lengthy"; exact does not */

    /* A long element (regex subjects of 512 bytes or more take the heap path). */
    char long_value[700];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    memcpy(long_value, "len", 3);
    s->attrs[0] = KA("fr", ES("stop"), ES(long_value));
    assert_int_equal(run(f.e, &t).policy, 1);
    long_value[0] = 'x';
    assert_int_equal(run(f.e, &t).policy, 2);

    /* A resource array matches too (scope any). */
    memset(&s->attrs[0], 0, sizeof s->attrs[0]);
    t.res[0][0] = KA("fr", ES("x"), ES("length"));
    assert_int_equal(run(f.e, &t).policy, 0);
    teardown(&f);
}

static void test_numeric_attribute_arrays_doubles_and_ints(void **state)
{
    (void)state;
    fixture f;
    setup(&f, "policies:\n"
              "  - name: n\n"
              "    type: numeric_attribute\n"
              "    numeric_attribute: {key: v, min_value: 10, max_value: 20}\n");
    ttrace t;
    trace_init(&t);
    tspan *s = add_span(&t, "op", true, 0);
    struct {
        tkv kv;
        rt_decision want;
    } cases[] = {
        {KI("v", 10), RT_DECISION_SAMPLED},
        {KI("v", 20), RT_DECISION_SAMPLED},
        {KI("v", 21), RT_DECISION_NOT_SAMPLED},
        {KD("v", 9.999), RT_DECISION_NOT_SAMPLED},
        {KD("v", 20.0), RT_DECISION_SAMPLED},
        {KD("v", 20.001), RT_DECISION_NOT_SAMPLED},
        {KS("v", "15"), RT_DECISION_NOT_SAMPLED},
        {KA("v", EI(1), EI(30)), RT_DECISION_NOT_SAMPLED},
        {KA("v", EI(1), EI(15)), RT_DECISION_SAMPLED},
        {KA("v", ES("15"), EB(1), ED(12.5)), RT_DECISION_SAMPLED}, /* mixed: the double */
        {KA("v", ES("15"), EB(1)), RT_DECISION_NOT_SAMPLED},
        {KA("v", EA(EI(15))), RT_DECISION_NOT_SAMPLED}, /* nested: not searched */
        {KA0("v"), RT_DECISION_NOT_SAMPLED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s->attrs[0] = cases[i].kv;
        if (decide(f.e, &t) != cases[i].want) {
            fail_msg("case %zu", i);
        }
    }
    teardown(&f);
}

static void test_boolean_attribute_arrays(void **state)
{
    (void)state;
    fixture f;
    setup(&f, "policies:\n"
              "  - {name: b, type: boolean_attribute, boolean_attribute: {key: f, value: true}}\n"
              "  - name: nb\n"
              "    type: boolean_attribute\n"
              "    boolean_attribute: {key: f, value: true, invert_match: true}\n");
    ttrace t;
    trace_init(&t);
    tspan *s = add_span(&t, "op", true, 0);
    s->attrs[0] = KA("f", EB(0), ES("true"), EB(1));
    assert_int_equal(run(f.e, &t).policy, 0);
    s->attrs[0] = KA("f", EB(0), ES("true"), EI(1));
    assert_int_equal(run(f.e, &t).policy, 1);
    s->attrs[0] = KA0("f");
    assert_int_equal(run(f.e, &t).policy, 1);
    teardown(&f);
}

/* ---- scope --------------------------------------------------------------------------------- */

static void test_scope_span_resource_any(void **state)
{
    (void)state;
    fixture f;
    ttrace t;
    static const char *const scopes[] = {"any", "span", "resource", "root"};
    /* Where the value sits -> which scopes match. */
    struct {
        const char *where;
        bool want[4]; /* any, span, resource, root */
    } cases[] = {
        {"resource of a child", {true, false, true, false}},
        {"child span", {true, true, false, false}},
        {"root span", {true, true, false, true}},
        {"resource of the root", {true, false, true, false}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        trace_init(&t);
        tspan *root = add_span(&t, "root", true, 0);
        tspan *child = add_span(&t, "child", false, 1);
        switch (c) {
        case 0:
            t.res[1][0] = KS("tenant.id", "acme");
            break;
        case 1:
            child->attrs[0] = KS("tenant.id", "acme");
            break;
        case 2:
            root->attrs[0] = KS("tenant.id", "acme");
            break;
        default:
            t.res[0][0] = KS("tenant.id", "acme");
            break;
        }
        for (size_t s = 0; s < 4; s++) {
            char yaml[512];
            snprintf(yaml, sizeof yaml,
                     "policies:\n  - {name: p, type: string_attribute, string_attribute: "
                     "{key: tenant.id, values: [acme], scope: %s}}\n",
                     scopes[s]);
            setup(&f, yaml);
            rt_decision d = decide(f.e, &t);
            if (d != (cases[c].want[s] ? RT_DECISION_SAMPLED : RT_DECISION_NOT_SAMPLED)) {
                fail_msg("value on %s, scope %s: got %d", cases[c].where, scopes[s], (int)d);
            }
            teardown(&f);
        }
    }
}

static void test_scope_root_not_yet_arrived_and_not(void **state)
{
    (void)state;
    fixture f;
    setup(&f, "policies:\n"
              "  - name: root-is-planner\n"
              "    type: string_attribute\n"
              "    string_attribute: {key: gen_ai.agent.name, values: [planner], scope: root}\n"
              "  - name: root-is-not-planner\n"
              "    type: not\n"
              "    not:\n"
              "      not_sub_policy:\n"
              "        name: inner\n"
              "        type: string_attribute\n"
              "        string_attribute:\n"
              "          key: gen_ai.agent.name\n"
              "          values: [planner]\n"
              "          scope: root\n");
    ttrace t;
    agent_turn(&t, 2, 2, "x");
    rt_policy_result r = run(f.e, &t);
    assert_int_equal(r.policy, 0);

    /* The root has not arrived: a child with the attribute does not count for scope root. */
    ttrace late = t;
    late.spans[0].root = false;
    late.spans[1].attrs[3] = KS("gen_ai.agent.name", "planner");
    r = run(f.e, &late);
    assert_int_equal(r.decision, RT_DECISION_SAMPLED);
    assert_int_equal(r.policy, 1); /* not(...) samples it */

    /* Same for numeric and boolean, with invert_match. */
    teardown(&f);
    setup(&f, "policies:\n"
              "  - name: n\n"
              "    type: numeric_attribute\n"
              "    numeric_attribute: {key: k, min_value: 1, scope: root}\n"
              "  - name: b\n"
              "    type: boolean_attribute\n"
              "    boolean_attribute: {key: ok, value: true, scope: root, invert_match: true}\n");
    trace_init(&t);
    tspan *s = add_span(&t, "child", false, 0);
    s->attrs[0] = KI("k", 5);
    s->attrs[1] = KB("ok", 1);
    r = run(f.e, &t);
    assert_int_equal(r.policy, 1); /* n: no root yet; b (inverted): no root with ok=true */
    t.spans[0].root = true;
    r = run(f.e, &t);
    assert_int_equal(r.policy, 0);
    teardown(&f);
}

/* ---- numeric aggregates -------------------------------------------------------------------- */

/* A trace with token counts on its spans: ints, a double, an array, and one on the resource. */
static void token_trace(ttrace *t)
{
    trace_init(t);
    add_span(t, "invoke_agent", true, 0)->attrs[0] = KI("tok", 100);
    add_span(t, "chat", false, 0)->attrs[0] = KD("tok", 250.5);
    add_span(t, "chat", false, 1)->attrs[0] = KAS("tok", tok_mixed);
    add_span(t, "chat", false, 1)->attrs[0] = KS("tok", "1000000"); /* not a number */
    add_span(t, "tool", false, 0);                                  /* no value */
}

static rt_decision one_policy(const char *block, const ttrace *t)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "policies:\n  - {name: p, type: numeric_attribute, numeric_attribute: %s}\n", block);
    fixture f;
    setup(&f, yaml);
    rt_decision d = decide(f.e, t);
    teardown(&f);
    return d;
}

static void test_numeric_aggregates(void **state)
{
    (void)state;
    ttrace t;
    token_trace(&t);
    /* Values: 100, 250.5, 40, 9.5 -> sum 400, max 250.5, min 9.5, count 4. */
    struct {
        const char *block;
        rt_decision want;
    } cases[] = {
        {"{key: tok, aggregate: sum, min_value: 400, max_value: 400}", RT_DECISION_SAMPLED},
        {"{key: tok, aggregate: sum, min_value: 401}", RT_DECISION_NOT_SAMPLED},
        {"{key: tok, aggregate: sum, max_value: 399}", RT_DECISION_NOT_SAMPLED},
        {"{key: tok, aggregate: max, min_value: 250, max_value: 251}", RT_DECISION_SAMPLED},
        {"{key: tok, aggregate: max, min_value: 251}", RT_DECISION_NOT_SAMPLED},
        {"{key: tok, aggregate: min, min_value: 9, max_value: 10}", RT_DECISION_SAMPLED},
        {"{key: tok, aggregate: min, min_value: 10}", RT_DECISION_NOT_SAMPLED},
        {"{key: tok, aggregate: count, min_value: 4, max_value: 4}", RT_DECISION_SAMPLED},
        {"{key: tok, aggregate: count, min_value: 5}", RT_DECISION_NOT_SAMPLED},
        /* none: any single value in range (OTel); 250.5 is in [200, 300], the sum is not. */
        {"{key: tok, min_value: 200, max_value: 300}", RT_DECISION_SAMPLED},
        {"{key: tok, aggregate: none, min_value: 300, max_value: 399}", RT_DECISION_NOT_SAMPLED},
        {"{key: tok, aggregate: sum, min_value: 300, max_value: 399, invert_match: true}",
         RT_DECISION_SAMPLED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (one_policy(cases[i].block, &t) != cases[i].want) {
            fail_msg("case %zu: %s", i, cases[i].block);
        }
    }

    /* Scope: a resource value is folded with scope any (once per span under it: 3 spans under
     * resource 0) but not with scope span. */
    t.res[0][0] = KI("tok", 1000);
    assert_int_equal(one_policy("{key: tok, aggregate: sum, min_value: 400, max_value: 400, "
                                "scope: span}",
                                &t),
                     RT_DECISION_SAMPLED);
    assert_int_equal(one_policy("{key: tok, aggregate: sum, min_value: 3400, max_value: 3400}", &t),
                     RT_DECISION_SAMPLED);
    assert_int_equal(one_policy("{key: tok, aggregate: max, min_value: 1000, scope: resource}", &t),
                     RT_DECISION_SAMPLED);
    assert_int_equal(
        one_policy("{key: tok, aggregate: count, min_value: 1, max_value: 1, scope: root}", &t),
        RT_DECISION_SAMPLED);
}

static void test_numeric_aggregates_without_values(void **state)
{
    (void)state;
    ttrace t;
    trace_init(&t);
    add_span(&t, "op", true, 0)->attrs[0] = KS("tok", "12");
    add_span(&t, "op", false, 0)->attrs[0] = KA0("tok");
    /* count 0 is compared like any count. */
    assert_int_equal(one_policy("{key: tok, aggregate: count, max_value: 3}", &t),
                     RT_DECISION_SAMPLED);
    assert_int_equal(one_policy("{key: tok, aggregate: count, min_value: 1}", &t),
                     RT_DECISION_NOT_SAMPLED);
    /* sum / max / min of nothing match nothing, even an unbounded range; invert samples. */
    static const char *const aggs[] = {"sum", "max", "min"};
    for (size_t i = 0; i < 3; i++) {
        char block[256];
        snprintf(block, sizeof block, "{key: tok, aggregate: %s}", aggs[i]);
        assert_int_equal(one_policy(block, &t), RT_DECISION_NOT_SAMPLED);
        snprintf(block, sizeof block, "{key: tok, aggregate: %s, invert_match: true}", aggs[i]);
        assert_int_equal(one_policy(block, &t), RT_DECISION_SAMPLED);
    }
    /* Negative sums work with the 0-is-unbounded rule: sum -5 in [-10, +inf). */
    add_span(&t, "op", false, 0)->attrs[0] = KI("tok", -7);
    add_span(&t, "op", false, 0)->attrs[0] = KD("tok", 2.0);
    assert_int_equal(one_policy("{key: tok, aggregate: sum, min_value: -10}", &t),
                     RT_DECISION_SAMPLED);
    assert_int_equal(one_policy("{key: tok, aggregate: sum, min_value: -4}", &t),
                     RT_DECISION_NOT_SAMPLED);
}

/* ---- composition --------------------------------------------------------------------------- */

static void test_drop_and_and_with_agent_policies(void **state)
{
    (void)state;
    fixture f;
    setup(&f, "policies:\n"
              "  - name: drop-token-hogs\n"
              "    type: drop\n"
              "    drop:\n"
              "      drop_sub_policy:\n"
              "        - name: hog\n"
              "          type: numeric_attribute\n"
              "          numeric_attribute:\n"
              "            key: gen_ai.usage.input_tokens\n"
              "            aggregate: sum\n"
              "            min_value: 1001\n"
              "            scope: span\n"
              "  - name: tool-heavy-for-x\n"
              "    type: and\n"
              "    and:\n"
              "      and_sub_policy:\n"
              "        - name: tools\n"
              "          type: span_count\n"
              "          span_count:\n"
              "            min_spans: 5\n"
              "            span_filter:\n"
              "              attributes: [{key: gen_ai.operation.name, values: [execute_tool]}]\n"
              "        - name: tenant\n"
              "          type: string_attribute\n"
              "          string_attribute: {key: tenant.id, values: [x], scope: root}\n");
    ttrace t;
    agent_turn(&t, 4, 5, "x"); /* 400 input tokens, 5 tools, tenant x */
    rt_policy_result r = run(f.e, &t);
    assert_int_equal(r.decision, RT_DECISION_SAMPLED);
    assert_int_equal(r.policy, 1);
    agent_turn(&t, 4, 5, "y"); /* wrong tenant */
    assert_int_equal(decide(f.e, &t), RT_DECISION_NOT_SAMPLED);
    agent_turn(&t, 4, 4, "x"); /* 4 tools */
    assert_int_equal(decide(f.e, &t), RT_DECISION_NOT_SAMPLED);
    agent_turn(&t, 10, 5, "x"); /* 1000 tokens: not over 1000 */
    assert_int_equal(decide(f.e, &t), RT_DECISION_SAMPLED);
    agent_turn(&t, 11, 5, "x"); /* 1100 tokens: dropped, although the and would sample */
    r = run(f.e, &t);
    assert_int_equal(r.decision, RT_DECISION_DROPPED);
    assert_int_equal(r.policy, 0);
    teardown(&f);
}

/* ---- config -------------------------------------------------------------------------------- */

static void test_field_tables_are_sound(void **state)
{
    (void)state;
    const rt_pol_ops *ops[] = {&rt_pol_span_count_ops, &rt_pol_numeric_attribute_ops,
                               &rt_pol_string_attribute_ops, &rt_pol_boolean_attribute_ops};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        char err[512];
        if (rt_cfg_check_table(ops[i]->fields, err, sizeof err) != 0) {
            fail_msg("%s: %s", ops[i]->type, err);
        }
    }
}

#define SC_HEAD                                                                                    \
    "policies:\n  - name: s\n    type: span_count\n    span_count:\n      min_spans: 1\n"
#define SF_HEAD  SC_HEAD "      span_filter:\n"
#define SF_ATTRS SF_HEAD "        attributes:\n"
#define SC_PATH  "tail_sampling.policies[0].span_count"

static void test_config_errors_name_their_line(void **state)
{
    (void)state;
    /* span_filter itself (its key is on line 6). */
    expect_error(SC_HEAD "      span_filter: {}\n",
                 "t.yaml:6: " SC_PATH ".span_filter: ", "needs name_pattern, attributes or both");
    expect_error(SC_HEAD "      span_filter:\n", "t.yaml:", "needs name_pattern");
    expect_error(SF_HEAD "        name: x\n", "t.yaml:7: " SC_PATH ".span_filter.name: ",
                 "unknown key (known: name_pattern, attributes)");
    expect_error(SF_HEAD "        name_pattern: 'execute_tool('\n",
                 "t.yaml:7: " SC_PATH ".span_filter: ",
                 "name_pattern: bad regular expression \"execute_tool(\"");
    expect_error(SF_HEAD "        name_pattern: ''\n",
                 "t.yaml:7: " SC_PATH ".span_filter: ", "name_pattern: must not be empty");
    expect_error(SF_HEAD "        name_pattern: [a]\n",
                 "t.yaml:7: " SC_PATH ".span_filter.name_pattern: ", "expected a string");
    expect_error(SC_HEAD "      span_filter: [x]\n",
                 "t.yaml:6: " SC_PATH ".span_filter: ", "expected a mapping");
    /* attributes. */
    expect_error(SF_HEAD "        attributes: {key: a}\n",
                 "t.yaml:7: " SC_PATH ".span_filter.attributes: ",
                 "expected a list of attribute conditions");
    expect_error(SF_HEAD "        attributes: []\n",
                 "t.yaml:7: " SC_PATH ".span_filter.attributes: ", "at least one");
    expect_error(SF_ATTRS "          - {key: a, values: [x]}\n"
                          "          - key: b\n"
                          "            values: [x]\n"
                          "            min_value: 3\n",
                 "t.yaml:11: " SC_PATH ".span_filter.attributes[1]: ",
                 "`min_value` cannot be combined with `values`");
    expect_error(SF_ATTRS "          - key: b\n"
                          "            bool_value: true\n"
                          "            max_value: 3\n",
                 "t.yaml:10: " SC_PATH ".span_filter.attributes[0]: ",
                 "`max_value` cannot be combined with `bool_value`");
    expect_error(SF_ATTRS "          - key: b\n"
                          "            use_regex: true\n",
                 "t.yaml:8: " SC_PATH ".span_filter.attributes[0]: ",
                 "attribute \"b\" needs one of values, min_value/max_value or bool_value");
    expect_error(
        SF_ATTRS "          - key: b\n"
                 "            min_value: 1\n"
                 "            use_regex: true\n",
        "t.yaml:10: " SC_PATH ".span_filter.attributes[0]: ", "use_regex only applies to `values`");
    expect_error(SF_ATTRS "          - key: b\n"
                          "            values: ['ok', 'bad([']\n"
                          "            use_regex: true\n",
                 "t.yaml:9: " SC_PATH ".span_filter.attributes[0]: ",
                 "values[1]: bad regular expression \"bad([\"");
    expect_error(SF_ATTRS "          - {key: b, values: []}\n",
                 "t.yaml:8: " SC_PATH ".span_filter.attributes[0]: ",
                 "values: at least one value is required");
    expect_error(
        SF_ATTRS "          - key: b\n"
                 "            values: x\n",
        "t.yaml:9: " SC_PATH ".span_filter.attributes[0].values: ", "expected a list of strings");
    expect_error(SF_ATTRS "          - key: b\n"
                          "            min_value: lots\n",
                 "t.yaml:9: " SC_PATH ".span_filter.attributes[0].min_value: ",
                 "\"lots\" is not an integer");
    expect_error(
        SF_ATTRS "          - key: b\n"
                 "            bool_value: maybe\n",
        "t.yaml:9: " SC_PATH ".span_filter.attributes[0].bool_value: ", "is not a boolean");
    expect_error(SF_ATTRS "          - {values: [x]}\n",
                 "t.yaml:8: " SC_PATH ".span_filter.attributes[0].key: ", "missing required key");
    expect_error(SF_ATTRS "          - {key: '', values: [x]}\n",
                 "t.yaml:8: " SC_PATH ".span_filter.attributes[0]: ", "key: must not be empty");
    expect_error(SF_ATTRS "          - {key: b, values: [x], scope: span}\n",
                 "t.yaml:8: " SC_PATH ".span_filter.attributes[0].scope: ", "unknown key");
    expect_error(SF_ATTRS "          - key: b\n"
                          "            min_value: 5\n"
                          "            max_value: 2\n",
                 "t.yaml:10: " SC_PATH ".span_filter.attributes[0]: ", "less than min_value");
    expect_error(SF_ATTRS "          - just-a-string\n",
                 "t.yaml:8: " SC_PATH ".span_filter.attributes[0]: ", "expected a mapping");

    /* scope and aggregate. */
    expect_error("policies:\n  - name: s\n    type: string_attribute\n    string_attribute:\n"
                 "      key: k\n      values: [v]\n      scope: trace\n",
                 "t.yaml:7: tail_sampling.policies[0].string_attribute.scope: ",
                 "\"trace\" is not one of: any, span, root, resource");
    expect_error(
        "policies:\n  - name: s\n    type: boolean_attribute\n    boolean_attribute:\n"
        "      key: k\n      scope: [span]\n",
        "t.yaml:6: tail_sampling.policies[0].boolean_attribute.scope: ", "expected an enum");
    expect_error(
        "policies:\n  - name: s\n    type: numeric_attribute\n    numeric_attribute:\n"
        "      key: k\n      scope: Root\n",
        "t.yaml:6: tail_sampling.policies[0].numeric_attribute.scope: ", "\"Root\" is not one of");
    expect_error("policies:\n  - name: s\n    type: numeric_attribute\n    numeric_attribute:\n"
                 "      key: k\n      min_value: 1\n      aggregate: avg\n",
                 "t.yaml:7: tail_sampling.policies[0].numeric_attribute.aggregate: ",
                 "\"avg\" is not one of: none, sum, max, min, count");
    expect_error(
        "policies:\n  - name: s\n    type: numeric_attribute\n    numeric_attribute:\n"
        "      key: k\n      aggregate:\n",
        "t.yaml:6: tail_sampling.policies[0].numeric_attribute.aggregate: ", "missing value");
    /* The aggregate keys belong to numeric_attribute only. */
    expect_error("policies:\n  - name: s\n    type: string_attribute\n    string_attribute:\n"
                 "      key: k\n      values: [v]\n      aggregate: sum\n",
                 "t.yaml:7: tail_sampling.policies[0].string_attribute.aggregate: ", "unknown key");
    /* Errors inside a nested sub-policy keep their full path. */
    expect_error("policies:\n  - name: a\n    type: and\n    and:\n      and_sub_policy:\n"
                 "        - name: t\n          type: span_count\n          span_count:\n"
                 "            min_spans: 1\n            span_filter: {name_pattern: '('}\n",
                 "t.yaml:10: tail_sampling.policies[0].and.and_sub_policy[0].span_count."
                 "span_filter: ",
                 "bad regular expression");
}

/* Every error of a bad filter is reported, not only the first. */
static void test_config_errors_are_all_collected(void **state)
{
    (void)state;
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, "t.yaml");
    rt_policy_set *set = parse(SF_HEAD "        name_pattern: '('\n"
                                       "        attributes:\n"
                                       "          - {key: a}\n"
                                       "          - {key: b, values: [x], bool_value: true}\n",
                               &ctx);
    assert_null(set);
    assert_int_equal(ctx.n_errors, 3);
    const char *all = (const char *)ctx.errors.data;
    assert_non_null(strstr(all, "t.yaml:7: " SC_PATH ".span_filter: name_pattern"));
    assert_non_null(strstr(all, "t.yaml:9: " SC_PATH ".span_filter.attributes[0]: "));
    assert_non_null(strstr(all, "t.yaml:10: " SC_PATH ".span_filter.attributes[1]: "));
    rt_cfg_ctx_free(&ctx);
}

/* The OTel-schema fixtures (the team's copy in tests/fixtures, or RT_FIXTURES_DIR) and the
 * shipped bare policy lists still parse with the new keys in place. */
static const rt_cfg_node *find_policies(const rt_cfg_node *root)
{
    const rt_cfg_node *n = rt_cfg_node_get(root, "policies");
    if (n == NULL) {
        n = rt_cfg_node_get(rt_cfg_node_get(root, "tail_sampling"), "policies");
    }
    if (n == NULL) {
        n = rt_cfg_node_get(rt_cfg_node_get(rt_cfg_node_get(root, "processors"), "tail_sampling"),
                            "policies");
    }
    return n;
}

static size_t parse_dir(const char *dir, const char *prefix)
{
    size_t parsed = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        fail_msg("cannot open %s", dir);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 5, ".yaml") != 0 ||
            strncmp(de->d_name, prefix, strlen(prefix)) != 0) {
            continue;
        }
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        rt_cfg_ctx ctx;
        rt_cfg_ctx_init(&ctx, path);
        rt_cfg_doc *doc = rt_cfg_doc_load_file(&ctx, path);
        if (doc == NULL) {
            fail_msg("%s", ctx.first_error);
        }
        const rt_cfg_node *pol = find_policies(rt_cfg_doc_root(doc));
        if (pol != NULL) {
            rt_policy_set *set = rt_policy_set_parse(&ctx, pol, "tail_sampling.policies");
            if (set == NULL) {
                fail_msg("%s", ctx.first_error);
            }
            assert_true(rt_policy_set_count(set) > 0);
            rt_policy_set_free(set);
            parsed++;
        }
        rt_cfg_doc_free(doc);
        rt_cfg_ctx_free(&ctx);
    }
    closedir(d);
    return parsed;
}

static void test_fixtures_still_parse(void **state)
{
    (void)state;
    const char *src = getenv("RT_SOURCE_DIR");
    assert_non_null(src);
    char dir[1024];
    const char *fx = getenv("RT_FIXTURES_DIR");
    if (fx != NULL && fx[0] != '\0') {
        snprintf(dir, sizeof dir, "%s", fx);
    } else {
        snprintf(dir, sizeof dir, "%s/tests/fixtures", src);
    }
    assert_true(parse_dir(dir, "") >= 1);
    snprintf(dir, sizeof dir, "%s/config", src);
    assert_true(parse_dir(dir, "policies-") >= 1);
}

/* ---- through the trace buffer: duplicates are not counted by a filter --------------------- */

typedef struct sink {
    size_t requests, spans;
} sink;

static void on_emit(void *arg, rt_buf *req, size_t spans)
{
    (void)req;
    sink *s = arg;
    s->requests++;
    s->spans += spans;
}

/* Ingest `t` twice (a client retry) and decide; returns the spans emitted. */
static size_t buffer_twice(const char *yaml, const ttrace *t)
{
    fixture f;
    setup(&f, yaml);
    sink out = {0, 0};
    rt_tbuf_opts o;
    memset(&o, 0, sizeof o);
    o.decision_wait_ns = 1000000000ull;
    o.max_traces = 100;
    o.max_bytes = 64u << 20;
    o.sampled_cache_size = 16;
    o.non_sampled_cache_size = 16;
    o.emitted_span_ids = 64;
    rt_tbuf *b = rt_tbuf_new(&o, f.e, on_emit, &out, NULL);
    rt_buf req = RT_BUF_INIT;
    encode_trace(t, &req);
    assert_int_equal(rt_tbuf_ingest(b, req.data, req.len, 1), (long)t->n);
    assert_int_equal(rt_tbuf_ingest(b, req.data, req.len, 2), (long)t->n);
    rt_tbuf_decide_all(b, 3);
    rt_tbuf_free(b);
    rt_buf_free(&req);
    teardown(&f);
    return out.spans;
}

static void test_duplicate_spans_are_not_counted_twice(void **state)
{
    (void)state;
    ttrace t;
    agent_turn(&t, 2, 3, "x"); /* 3 tool calls, 9 spans */
    const char *four = "policies:\n  - name: tools\n    type: span_count\n    span_count:\n"
                       "      min_spans: 4\n      span_filter: {name_pattern: ^execute_tool}\n";
    const char *three = "policies:\n  - name: tools\n    type: span_count\n    span_count:\n"
                        "      min_spans: 3\n      span_filter: {name_pattern: ^execute_tool}\n";
    assert_int_equal(buffer_twice(four, &t), 0);
    assert_int_equal(buffer_twice(three, &t), t.n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span_filter_counts_only_matching_span_names),
        cmocka_unit_test(test_span_filter_attribute_entries_all_must_match),
        cmocka_unit_test(test_span_filter_matching_nothing_and_min_zero),
        cmocka_unit_test(test_span_filter_entry_matches_array_elements),
        cmocka_unit_test(test_string_attribute_matches_array_elements),
        cmocka_unit_test(test_numeric_attribute_arrays_doubles_and_ints),
        cmocka_unit_test(test_boolean_attribute_arrays),
        cmocka_unit_test(test_scope_span_resource_any),
        cmocka_unit_test(test_scope_root_not_yet_arrived_and_not),
        cmocka_unit_test(test_numeric_aggregates),
        cmocka_unit_test(test_numeric_aggregates_without_values),
        cmocka_unit_test(test_drop_and_and_with_agent_policies),
        cmocka_unit_test(test_field_tables_are_sound),
        cmocka_unit_test(test_config_errors_name_their_line),
        cmocka_unit_test(test_config_errors_are_all_collected),
        cmocka_unit_test(test_fixtures_still_parse),
        cmocka_unit_test(test_duplicate_spans_are_not_counted_twice),
        cmocka_unit_test(test_resource_index_follows_the_bytes_not_the_address),
        cmocka_unit_test(test_shared_index_and_keys_beyond_its_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
