/* workload.c - the agent workload model: turns shaped like agent-traces.md, from one seed. */
#include "workload.h"

#include "alloc.h"
#include "pb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fleet -------------------------------------------------------------------------- */

#define N_AGENTS     4
#define N_MCP        6
#define N_SERVICES   (N_AGENTS + N_MCP)
#define N_BIG_TENANT 6
#define N_TAIL       400
#define N_TENANTS    (N_BIG_TENANT + N_TAIL)

static const char *const agent_names[N_AGENTS] = {"support-agent", "research-agent", "coding-agent",
                                                  "travel-agent"};
static const char *const mcp_names[N_MCP] = {"mcp-web",  "mcp-filesystem", "mcp-postgres",
                                             "mcp-jira", "mcp-weather",    "mcp-sandbox"};
static const char *const big_tenants[N_BIG_TENANT] = {
    "globex", "initech", "umbrella", "hooli", "stark-industries", "wayne-enterprises"};
static const char *const debug_tenants[2] = {"acme-corp", "big-bank-inc"};

typedef enum backend { BE_HTTP, BE_DB, BE_EXEC } backend;

typedef struct tool_def {
    const char *name;
    int mcp; /* index into mcp_names */
    backend be;
    const char *be_name; /* span name of the MCP server's backend call */
    const char *be_target;
} tool_def;

static const tool_def tools[] = {
    {"search_web", 0, BE_HTTP, "GET", "api.search.example"},
    {"fetch_url", 0, BE_HTTP, "GET", "docs.example.org"},
    {"read_file", 1, BE_EXEC, "fs.read", "/srv/data"},
    {"write_file", 1, BE_EXEC, "fs.write", "/srv/data"},
    {"query_db", 2, BE_DB, "SELECT orders", "orders"},
    {"list_tables", 2, BE_DB, "SELECT information_schema.tables", "tables"},
    {"create_ticket", 3, BE_HTTP, "POST", "jira.example.com"},
    {"get_weather", 4, BE_HTTP, "GET", "api.weather.example"},
    {"run_code", 5, BE_EXEC, "exec python", "sandbox"},
};
#define N_TOOLS (sizeof tools / sizeof tools[0])

typedef struct model_def {
    const char *model;
    const char *provider;
} model_def;

static const model_def models[] = {
    {"gpt-4o", "openai"},
    {"gpt-4.1-mini", "openai"},
    {"claude-sonnet-4", "anthropic"},
    {"gemini-2.5-pro", "gcp.gemini"},
    {"llama-3.3-70b", "aws.bedrock"},
};
#define N_MODELS (sizeof models / sizeof models[0])

static const char *const category_names[RT_WL_NCATS] = {"error", "slow", "token_limit",
                                                        "debug_tenant", "tool_heavy"};

typedef struct service {
    const char *name; /* ref into the tables above */
    rt_buf resource;  /* encoded Resource */
    rt_buf scope;     /* encoded InstrumentationScope */
} svc_def;

struct rt_workload {
    rt_workload_opts o;
    uint64_t rng;
    uint64_t n_turns;
    svc_def services[N_SERVICES];
    char *tail_names[N_TAIL];
    double tenant_cdf[N_TENANTS]; /* Zipf over big tenants then the tail */
    uint64_t jsonrpc_id;
    rt_wl_turn turn;
};

/* ---- randomness (splitmix64: tiny, and every seed is good) ------------------------------ */

static uint64_t rnd(rt_workload *wl)
{
    uint64_t z = (wl->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rnd_unit(rt_workload *wl)
{
    return (double)(rnd(wl) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [lo, hi]. */
static uint32_t rnd_range(rt_workload *wl, uint32_t lo, uint32_t hi)
{
    return lo + (uint32_t)(rnd(wl) % (uint64_t)(hi - lo + 1));
}

static void rnd_id(rt_workload *wl, uint8_t *out, size_t n)
{
    for (;;) {
        uint64_t a = rnd(wl), b = rnd(wl);
        memcpy(out, &a, n < 8 ? n : 8);
        if (n > 8) {
            memcpy(out + 8, &b, n - 8);
        }
        for (size_t i = 0; i < n; i++) {
            if (out[i] != 0) {
                return; /* never all zero: zero ids are invalid in OTLP */
            }
        }
    }
}

/* ---- encoding helpers ------------------------------------------------------------------- */

typedef enum attr_type { A_STR, A_INT, A_STRARR } attr_type;

typedef struct attr {
    const char *key;
    attr_type type;
    const char *s; /* A_STR; A_STRARR: the one element (our arrays hold one reason) */
    int64_t i;
} attr;

static size_t anyvalue_size(const attr *a)
{
    switch (a->type) {
    case A_STR:
        return rt_pb_len_field_size(1, strlen(a->s));
    case A_INT:
        return 1 + rt_pb_varint_size((uint64_t)a->i);
    case A_STRARR: {
        size_t elem = rt_pb_len_field_size(1, strlen(a->s)); /* AnyValue{string_value} */
        size_t arr = rt_pb_len_field_size(1, elem);          /* ArrayValue{values} */
        return rt_pb_len_field_size(5, arr);
    }
    }
    return 0;
}

/* Append KeyValue `a` as field `field` of the enclosing message. */
static void put_attr(rt_buf *b, uint32_t field, const attr *a)
{
    size_t klen = strlen(a->key);
    size_t av = anyvalue_size(a);
    rt_pb_append_len_prefix(b, field, rt_pb_len_field_size(1, klen) + rt_pb_len_field_size(2, av));
    rt_pb_append_len_field(b, 1, a->key, klen);
    rt_pb_append_len_prefix(b, 2, av);
    switch (a->type) {
    case A_STR:
        rt_pb_append_len_field(b, 1, a->s, strlen(a->s));
        break;
    case A_INT:
        rt_pb_append_tag(b, 3, RT_PB_WT_VARINT);
        rt_pb_append_varint(b, (uint64_t)a->i);
        break;
    case A_STRARR: {
        size_t slen = strlen(a->s);
        size_t elem = rt_pb_len_field_size(1, slen);
        rt_pb_append_len_prefix(b, 5, rt_pb_len_field_size(1, elem));
        rt_pb_append_len_prefix(b, 1, elem);
        rt_pb_append_len_field(b, 1, a->s, slen);
        break;
    }
    }
}

static void encode_service(svc_def *s, const char *name, bool mcp)
{
    s->name = name;
    rt_buf_init(&s->resource);
    rt_buf_init(&s->scope);
    const attr ra[] = {
        {"service.name", A_STR, name, 0},
        {"service.version", A_STR, mcp ? "0.9.3" : "2.4.1", 0},
        {"service.namespace", A_STR, mcp ? "mcp" : "agents", 0},
        {"deployment.environment.name", A_STR, "prod", 0},
        {"telemetry.sdk.name", A_STR, "opentelemetry", 0},
        {"telemetry.sdk.language", A_STR, mcp ? "nodejs" : "python", 0},
    };
    for (size_t i = 0; i < sizeof ra / sizeof ra[0]; i++) {
        put_attr(&s->resource, 1, &ra[i]);
    }
    const char *scope = mcp ? "@modelcontextprotocol/sdk" : "opentelemetry.instrumentation.genai";
    rt_pb_append_len_field(&s->scope, 1, scope, strlen(scope));
    rt_pb_append_len_field(&s->scope, 2, "1.2.0", 5);
}

/* ---- options ---------------------------------------------------------------------------- */

void rt_workload_opts_default(rt_workload_opts *o, rt_wl_profile profile, uint64_t seed)
{
    memset(o, 0, sizeof *o);
    o->profile = profile;
    o->seed = seed;
    o->error_rate = 0.03;
    o->slow_rate = 0.02;
    o->token_limit_rate = 0.02;
    o->debug_tenant_rate = 0.02;
    o->tool_heavy_rate = 0.15;
    o->tool_heavy_min = 25;
    o->late_rate = 0.05;
    o->batch_delay_ms = 200;
    o->batch_max_spans = 512;
}

rt_workload *rt_workload_new(rt_wl_profile profile, uint64_t seed)
{
    rt_workload_opts o;
    rt_workload_opts_default(&o, profile, seed);
    return rt_workload_new_opts(&o, NULL, 0);
}

static int check_rate(double r, const char *name, char *err, size_t errlen)
{
    if (!(r >= 0.0 && r <= 1.0)) {
        if (err) {
            snprintf(err, errlen, "workload: %s must be in [0, 1], got %g", name, r);
        }
        return -1;
    }
    return 0;
}

rt_workload *rt_workload_new_opts(const rt_workload_opts *o, char *err, size_t errlen)
{
    if (check_rate(o->error_rate, "error rate", err, errlen) ||
        check_rate(o->slow_rate, "slow rate", err, errlen) ||
        check_rate(o->token_limit_rate, "token_limit rate", err, errlen) ||
        check_rate(o->debug_tenant_rate, "debug_tenant rate", err, errlen) ||
        check_rate(o->tool_heavy_rate, "tool_heavy rate", err, errlen) ||
        check_rate(o->late_rate, "late rate", err, errlen)) {
        return NULL;
    }
    if (o->tool_heavy_min < 6 || o->tool_heavy_min > 30) {
        if (err) {
            snprintf(err, errlen, "workload: tool_heavy_min must be in [6, 30], got %u",
                     o->tool_heavy_min);
        }
        return NULL;
    }
    if (o->batch_max_spans == 0) {
        if (err) {
            snprintf(err, errlen, "workload: batch_max_spans must be at least 1");
        }
        return NULL;
    }
    if (o->profile > RT_WL_PROFILE_SPIKE) {
        if (err) {
            snprintf(err, errlen, "workload: unknown profile %d", (int)o->profile);
        }
        return NULL;
    }
    rt_workload *wl = rt_calloc(1, sizeof *wl);
    wl->o = *o;
    wl->rng = o->seed;
    for (size_t i = 0; i < N_AGENTS; i++) {
        encode_service(&wl->services[i], agent_names[i], false);
    }
    for (size_t i = 0; i < N_MCP; i++) {
        encode_service(&wl->services[N_AGENTS + i], mcp_names[i], true);
    }
    for (size_t i = 0; i < N_TAIL; i++) {
        wl->tail_names[i] = rt_sprintf("tenant-%04zu", i + 1);
    }
    /* Zipf (s = 1.1): the first few tenants carry most turns, the tail the rest. */
    double sum = 0;
    for (size_t i = 0; i < N_TENANTS; i++) {
        sum += 1.0 / pow((double)(i + 1), 1.1);
        wl->tenant_cdf[i] = sum;
    }
    for (size_t i = 0; i < N_TENANTS; i++) {
        wl->tenant_cdf[i] /= sum;
    }
    rt_buf_init(&wl->turn.pb);
    return wl;
}

void rt_workload_free(rt_workload *wl)
{
    if (!wl) {
        return;
    }
    for (size_t i = 0; i < N_SERVICES; i++) {
        rt_buf_free(&wl->services[i].resource);
        rt_buf_free(&wl->services[i].scope);
    }
    for (size_t i = 0; i < N_TAIL; i++) {
        free(wl->tail_names[i]);
    }
    free(wl->turn.spans);
    free(wl->turn.order);
    free(wl->turn.batches);
    rt_buf_free(&wl->turn.pb);
    free(wl);
}

/* ---- building a turn -------------------------------------------------------------------- */

static const char *pick_tenant(rt_workload *wl, bool debug)
{
    if (debug) {
        return debug_tenants[rnd(wl) & 1];
    }
    double u = rnd_unit(wl);
    size_t lo = 0, hi = N_TENANTS - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (wl->tenant_cdf[mid] > u) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo < N_BIG_TENANT ? big_tenants[lo] : wl->tail_names[lo - N_BIG_TENANT];
}

/* Add a span record (ids and timing; encoded later). Returns its index. */
static uint32_t add_span(rt_workload *wl, rt_wl_turn *t, uint32_t parent, uint16_t service,
                         uint16_t kind, uint64_t start, uint64_t end)
{
    if (t->n_spans == t->cap_spans) {
        t->cap_spans = t->cap_spans ? t->cap_spans * 2 : 256;
        t->spans = rt_realloc(t->spans, t->cap_spans * sizeof *t->spans);
        t->order = rt_realloc(t->order, t->cap_spans * sizeof *t->order);
    }
    rt_wl_span *s = &t->spans[t->n_spans];
    memset(s, 0, sizeof *s);
    rnd_id(wl, s->span_id, 8);
    s->parent = parent;
    if (parent != UINT32_MAX) {
        memcpy(s->parent_id, t->spans[parent].span_id, 8);
    }
    s->service = service;
    s->kind = kind;
    s->start_off_ns = start;
    s->end_off_ns = end > start ? end : start + 1000;
    s->ready_off_ns = s->end_off_ns;
    return (uint32_t)t->n_spans++;
}

/* Encode span `i` of `t` into t->pb with the given name and attributes. */
static void encode_span(rt_wl_turn *t, uint32_t i, const char *name, const attr *attrs,
                        size_t n_attrs, const char *status_msg)
{
    rt_wl_span *s = &t->spans[i];
    rt_buf *b = &t->pb;
    s->pb_off = b->len;
    rt_pb_append_len_field(b, 1, t->trace_id, 16);
    rt_pb_append_len_field(b, 2, s->span_id, 8);
    if (s->parent != UINT32_MAX) {
        rt_pb_append_len_field(b, 4, s->parent_id, 8);
    }
    rt_pb_append_len_field(b, 5, name, strlen(name));
    rt_pb_append_tag(b, 6, RT_PB_WT_VARINT);
    rt_pb_append_varint(b, s->kind);
    rt_pb_append_tag(b, 7, RT_PB_WT_FIXED64);
    rt_pb_append_fixed64(b, t->start_wall_ns + s->start_off_ns);
    rt_pb_append_tag(b, 8, RT_PB_WT_FIXED64);
    rt_pb_append_fixed64(b, t->start_wall_ns + s->end_off_ns);
    for (size_t a = 0; a < n_attrs; a++) {
        put_attr(b, 9, &attrs[a]);
    }
    if (s->error) {
        const char *msg = status_msg ? status_msg : "error";
        size_t mlen = strlen(msg);
        rt_pb_append_len_prefix(b, 15, rt_pb_len_field_size(2, mlen) + 2);
        rt_pb_append_len_field(b, 2, msg, mlen);
        rt_pb_append_tag(b, 3, RT_PB_WT_VARINT);
        rt_pb_append_varint(b, 2); /* STATUS_CODE_ERROR */
    }
    /* W3C sampled flag, plus has-is-remote (0x100) and is-remote (0x200) for a parent that
     * lives in another process (the MCP server's span under the agent's client span). */
    uint32_t flags = 0x101;
    if (s->kind == 2) {
        flags |= 0x200;
    }
    rt_pb_append_tag(b, 16, RT_PB_WT_FIXED32);
    rt_pb_append_fixed32(b, flags);
    s->pb_len = b->len - s->pb_off;
}

/* Per-tool-call plan, filled before encoding. */
typedef struct tool_plan {
    uint32_t exec, client, server;
    uint32_t be[2];
    uint32_t n_be;
    const tool_def *def;
    char call_id[24];
    int64_t rpc_id;
} tool_plan;

typedef struct chat_plan {
    uint32_t span;
    int64_t in_tok, out_tok;
    const char *finish;
} chat_plan;

static int cmp_ready(const void *a, const void *b, void *arg)
{
    const rt_wl_turn *t = arg;
    const rt_wl_span *x = &t->spans[*(const uint32_t *)a];
    const rt_wl_span *y = &t->spans[*(const uint32_t *)b];
    if (x->service != y->service) {
        return x->service < y->service ? -1 : 1;
    }
    if (x->ready_off_ns != y->ready_off_ns) {
        return x->ready_off_ns < y->ready_off_ns ? -1 : 1;
    }
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static int cmp_batch(const void *a, const void *b)
{
    const rt_wl_batch *x = a, *y = b;
    if (x->send_off_ns != y->send_off_ns) {
        return x->send_off_ns < y->send_off_ns ? -1 : 1;
    }
    return x->first < y->first ? -1 : 1;
}

/* Group the turn's spans as an SDK batch span processor would: per service, a batch opens with
 * the first span ready and is sent batch_delay later, or as soon as it holds batch_max_spans. */
static void make_batches(rt_workload *wl, rt_wl_turn *t)
{
    for (size_t i = 0; i < t->n_spans; i++) {
        t->order[i] = (uint32_t)i;
    }
    qsort_r(t->order, t->n_spans, sizeof *t->order, cmp_ready, t);
    uint64_t delay = (uint64_t)wl->o.batch_delay_ms * 1000000ull;
    t->n_batches = 0;
    size_t i = 0;
    while (i < t->n_spans) {
        const rt_wl_span *first = &t->spans[t->order[i]];
        size_t j = i + 1;
        uint64_t close = first->ready_off_ns + delay;
        while (j < t->n_spans && j - i < wl->o.batch_max_spans) {
            const rt_wl_span *s = &t->spans[t->order[j]];
            if (s->service != first->service || s->ready_off_ns >= close) {
                break;
            }
            j++;
        }
        if (t->n_batches == t->cap_batches) {
            t->cap_batches = t->cap_batches ? t->cap_batches * 2 : 64;
            t->batches = rt_realloc(t->batches, t->cap_batches * sizeof *t->batches);
        }
        rt_wl_batch *b = &t->batches[t->n_batches++];
        b->service = first->service;
        b->first = i;
        b->n = j - i;
        /* A full batch goes out when its last span is ready; otherwise on the timer. */
        b->send_off_ns =
            (j - i == wl->o.batch_max_spans) ? t->spans[t->order[j - 1]].ready_off_ns : close;
        i = j;
    }
    qsort(t->batches, t->n_batches, sizeof *t->batches, cmp_batch);
}

static void hex_into(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

char *rt_workload_hex(const uint8_t *p, size_t n, char *out)
{
    hex_into(p, n, out);
    return out;
}

const rt_wl_turn *rt_workload_next(rt_workload *wl, uint64_t start_wall_ns)
{
    rt_wl_turn *t = &wl->turn;
    const rt_workload_opts *o = &wl->o;
    t->index = wl->n_turns++;
    t->n_spans = 0;
    t->n_batches = 0;
    rt_buf_reset(&t->pb);
    t->start_wall_ns = start_wall_ns;
    t->input_tokens_sum = t->output_tokens_sum = 0;
    rnd_id(wl, t->trace_id, 16);

    /* What this turn is. Each category is an independent draw at its configured rate. */
    t->kind = RT_WL_KIND_TOOL;
    if (o->profile == RT_WL_PROFILE_MIXED) {
        double u = rnd_unit(wl);
        t->kind = u < 0.4 ? RT_WL_KIND_QA : u < 0.8 ? RT_WL_KIND_TOOL : RT_WL_KIND_CHATTY;
    }
    bool want_error = rnd_unit(wl) < o->error_rate;
    bool want_slow = rnd_unit(wl) < o->slow_rate;
    bool want_token = rnd_unit(wl) < o->token_limit_rate;
    bool want_debug = rnd_unit(wl) < o->debug_tenant_rate;
    bool want_heavy = rnd_unit(wl) < o->tool_heavy_rate;
    t->tenant = pick_tenant(wl, want_debug);
    uint16_t agent = (uint16_t)(rnd(wl) % N_AGENTS);
    t->agent = agent_names[agent];
    const model_def *model = &models[rnd(wl) % N_MODELS];

    uint32_t chats, ntools;
    uint64_t dur_ms;
    switch (t->kind) {
    case RT_WL_KIND_QA:
        chats = rnd_range(wl, 1, 2);
        ntools = chats == 2 ? 1 : 0;
        dur_ms = rnd_range(wl, 400, 3000);
        break;
    case RT_WL_KIND_CHATTY:
        chats = rnd_range(wl, 9, 16);
        ntools = rnd_range(wl, 2, 6);
        dur_ms = rnd_range(wl, 3000, 9500);
        break;
    case RT_WL_KIND_TOOL:
    default: {
        chats = rnd_range(wl, 4, 8);
        uint32_t hmin = o->tool_heavy_min;
        ntools = want_heavy ? rnd_range(wl, hmin, 30) : rnd_range(wl, hmin > 9 ? 8 : 5, hmin - 1);
        double u = rnd_unit(wl);
        dur_ms = 1500 + (uint64_t)(8000.0 * u * u); /* 1.5-9.5 s, mostly short */
        break;
    }
    }
    if (want_slow) {
        /* The interesting ones run ~47 s; a few are merely slow. */
        dur_ms = rnd_unit(wl) < 0.8 ? rnd_range(wl, 40000, 54000) : rnd_range(wl, 12000, 39000);
    }
    t->duration_ns = dur_ms * 1000000ull;
    t->chats = chats;
    t->tool_calls = ntools;

    /* Time layout: chats and tool calls one after another; a chat weighs 3, a tool call 1. */
    uint64_t margin = t->duration_ns / 100;
    uint64_t unit = (t->duration_ns - 2 * margin) / (3 * chats + ntools);
    uint32_t root = add_span(wl, t, UINT32_MAX, agent, 1, 0, t->duration_ns);

    chat_plan cp[16];
    tool_plan tp_buf[32];
    tool_plan *tp = tp_buf;
    uint32_t iters_with_tools = chats > 1 ? chats - 1 : 1;
    uint64_t cur = margin;
    uint32_t tool_i = 0;
    for (uint32_t c = 0; c < chats; c++) {
        cp[c].span = add_span(wl, t, root, agent, 3, cur, cur + 3 * unit);
        cur += 3 * unit;
        uint32_t here = 0;
        if (c < iters_with_tools) {
            here = ntools / iters_with_tools + (c < ntools % iters_with_tools ? 1 : 0);
        }
        for (uint32_t k = 0; k < here; k++, tool_i++) {
            tool_plan *p = &tp[tool_i];
            p->def = &tools[rnd(wl) % N_TOOLS];
            uint16_t mcp = (uint16_t)(N_AGENTS + p->def->mcp);
            /* Sometimes a tool call runs inside the previous one (nested two deep). */
            uint32_t parent = root;
            if (k > 0 && rnd_unit(wl) < 0.1) {
                parent = tp[tool_i - 1].exec;
            }
            uint64_t s = cur, e = cur + unit;
            p->exec = add_span(wl, t, parent, agent, 1, s, e);
            p->client = add_span(wl, t, p->exec, agent, 3, s + unit / 20, e - unit / 20);
            p->server = add_span(wl, t, p->client, mcp, 2, s + unit / 10, e - unit / 10);
            p->n_be = rnd_range(wl, 0, 2);
            for (uint32_t q = 0; q < p->n_be; q++) {
                uint64_t bs = s + unit / 5 + q * (unit * 3 / 10);
                p->be[q] = add_span(wl, t, p->server, mcp, p->def->be == BE_EXEC ? 1 : 3, bs,
                                    bs + unit / 4);
            }
            snprintf(p->call_id, sizeof p->call_id, "call_%016llx", (unsigned long long)rnd(wl));
            p->rpc_id = (int64_t)++wl->jsonrpc_id;
            cur += unit;
        }
    }

    /* Tokens and finish reasons. */
    for (uint32_t c = 0; c < chats; c++) {
        cp[c].in_tok = 600 + 700 * (int64_t)c + (int64_t)(rnd(wl) % 400);
        cp[c].out_tok = 40 + (int64_t)(rnd(wl) % 400);
        bool tools_follow =
            c < iters_with_tools && (ntools / iters_with_tools + (c < ntools % iters_with_tools));
        cp[c].finish = tools_follow ? "tool_call" : "stop";
    }
    if (want_token) {
        cp[chats - 1].in_tok = 120000 + (int64_t)(rnd(wl) % 8000);
        cp[chats - 1].out_tok = 4096;
        cp[chats - 1].finish = "length";
    } else {
        cp[chats - 1].out_tok += 400;
    }

    /* Failure: a tool call that times out or gets a 500 (agent and MCP side), or, in a turn
     * without tools, a model call that fails. */
    const char *err_type = (rnd(wl) & 1) ? "timeout" : "500";
    int64_t err_tool = -1, err_chat = -1;
    if (want_error) {
        if (ntools > 0) {
            err_tool = (int64_t)(rnd(wl) % ntools);
            t->spans[tp[err_tool].exec].error = true;
            t->spans[tp[err_tool].client].error = true;
            t->spans[tp[err_tool].server].error = true;
        } else {
            err_chat = 0;
            t->spans[cp[0].span].error = true;
            if (!(want_token && chats == 1)) {
                cp[0].finish = "error";
            }
        }
    }

    /* Late MCP batches: per MCP service, this turn's server spans are held back. */
    uint64_t late_ns[N_MCP];
    for (size_t m = 0; m < N_MCP; m++) {
        late_ns[m] =
            rnd_unit(wl) < o->late_rate ? (uint64_t)rnd_range(wl, 500, 3000) * 1000000ull : 0;
    }
    for (size_t i = 0; i < t->n_spans; i++) {
        rt_wl_span *s = &t->spans[i];
        if (s->service >= N_AGENTS) {
            s->ready_off_ns += late_ns[s->service - N_AGENTS];
        }
    }

    /* Encode. */
    char conv[40], name[96], sess[N_MCP][40], rpc[24];
    snprintf(conv, sizeof conv, "conv_%016llx", (unsigned long long)rnd(wl));
    for (size_t m = 0; m < N_MCP; m++) {
        snprintf(sess[m], sizeof sess[m], "mcp-sess-%012llx",
                 (unsigned long long)(rnd(wl) & 0xffffffffffffull));
    }
    snprintf(name, sizeof name, "invoke_agent %s", t->agent);
    const attr root_a[] = {
        {"gen_ai.operation.name", A_STR, "invoke_agent", 0},
        {"gen_ai.agent.name", A_STR, t->agent, 0},
        {"gen_ai.conversation.id", A_STR, conv, 0},
        {"tenant.id", A_STR, t->tenant, 0},
    };
    encode_span(t, root, name, root_a, 4, NULL);

    snprintf(name, sizeof name, "chat %s", model->model);
    for (uint32_t c = 0; c < chats; c++) {
        attr a[] = {
            {"gen_ai.operation.name", A_STR, "chat", 0},
            {"gen_ai.provider.name", A_STR, model->provider, 0},
            {"gen_ai.request.model", A_STR, model->model, 0},
            {"gen_ai.usage.input_tokens", A_INT, NULL, cp[c].in_tok},
            {"gen_ai.usage.output_tokens", A_INT, NULL, cp[c].out_tok},
            {"gen_ai.response.finish_reasons", A_STRARR, cp[c].finish, 0},
            {"error.type", A_STR, err_type, 0},
        };
        bool e = (int64_t)c == err_chat;
        encode_span(t, cp[c].span, name, a, e ? 7 : 6, "model call failed");
        t->input_tokens_sum += cp[c].in_tok;
        t->output_tokens_sum += cp[c].out_tok;
    }

    for (uint32_t k = 0; k < ntools; k++) {
        tool_plan *p = &tp[k];
        bool e = (int64_t)k == err_tool;
        const char *sid = sess[p->def->mcp];
        snprintf(rpc, sizeof rpc, "%lld", (long long)p->rpc_id);
        snprintf(name, sizeof name, "execute_tool %s", p->def->name);
        const attr ea[] = {
            {"gen_ai.operation.name", A_STR, "execute_tool", 0},
            {"gen_ai.tool.name", A_STR, p->def->name, 0},
            {"gen_ai.tool.call.id", A_STR, p->call_id, 0},
            {"gen_ai.tool.type", A_STR, "extension", 0},
            {"error.type", A_STR, err_type, 0},
        };
        encode_span(t, p->exec, name, ea, e ? 5 : 4, "tool call failed");
        snprintf(name, sizeof name, "tools/call %s", p->def->name);
        const attr ma[] = {
            {"mcp.method.name", A_STR, "tools/call", 0},
            {"mcp.session.id", A_STR, sid, 0},
            {"jsonrpc.request.id", A_STR, rpc, 0},
            {"gen_ai.tool.name", A_STR, p->def->name, 0},
            {"error.type", A_STR, err_type, 0},
        };
        encode_span(t, p->client, name, ma, e ? 5 : 4, "tools/call failed");
        encode_span(t, p->server, name, ma, e ? 5 : 4, "tools/call failed");
        for (uint32_t q = 0; q < p->n_be; q++) {
            attr ba[2];
            switch (p->def->be) {
            case BE_HTTP:
                ba[0] = (attr){"http.request.method", A_STR, p->def->be_name, 0};
                ba[1] = (attr){"server.address", A_STR, p->def->be_target, 0};
                break;
            case BE_DB:
                ba[0] = (attr){"db.system.name", A_STR, "postgresql", 0};
                ba[1] = (attr){"db.collection.name", A_STR, p->def->be_target, 0};
                break;
            case BE_EXEC:
            default:
                ba[0] = (attr){"code.function.name", A_STR, p->def->be_name, 0};
                ba[1] = (attr){"file.path", A_STR, p->def->be_target, 0};
                break;
            }
            encode_span(t, p->be[q], p->def->be_name, ba, 2, NULL);
        }
    }

    /* Ground truth. */
    t->categories = 0;
    for (size_t i = 0; i < t->n_spans; i++) {
        if (t->spans[i].error) {
            t->categories |= RT_WL_CAT_ERROR;
            break;
        }
    }
    if (t->duration_ns > 10000000000ull) {
        t->categories |= RT_WL_CAT_SLOW;
    }
    if (strcmp(cp[chats - 1].finish, "length") == 0) {
        t->categories |= RT_WL_CAT_TOKEN_LIMIT;
    }
    if (t->tenant == debug_tenants[0] || t->tenant == debug_tenants[1]) {
        t->categories |= RT_WL_CAT_DEBUG_TENANT;
    }
    if (ntools >= o->tool_heavy_min) {
        t->categories |= RT_WL_CAT_TOOL_HEAVY;
    }

    make_batches(wl, t);
    return t;
}

/* ---- requests and the manifest ---------------------------------------------------------- */

size_t rt_workload_service_count(const rt_workload *wl)
{
    return N_SERVICES;
}

const char *rt_workload_service_name(const rt_workload *wl, size_t service)
{
    return service < N_SERVICES ? wl->services[service].name : NULL;
}

void rt_workload_append_span_field(rt_buf *out, const rt_wl_turn *t, size_t i)
{
    const rt_wl_span *s = &t->spans[i];
    rt_pb_append_len_field(out, 2, t->pb.data + s->pb_off, s->pb_len);
}

void rt_workload_encode_request(const rt_workload *wl, size_t service, const uint8_t *spans,
                                size_t len, rt_buf *out)
{
    const svc_def *sv = &wl->services[service];
    size_t ss = rt_pb_len_field_size(1, sv->scope.len) + len;
    size_t rs = rt_pb_len_field_size(1, sv->resource.len) + rt_pb_len_field_size(2, ss);
    rt_buf_reserve(out, rt_pb_len_field_size(1, rs));
    rt_pb_append_len_prefix(out, 1, rs);
    rt_pb_append_len_field(out, 1, sv->resource.data, sv->resource.len);
    rt_pb_append_len_prefix(out, 2, ss);
    rt_pb_append_len_field(out, 1, sv->scope.data, sv->scope.len);
    rt_buf_append(out, spans, len);
}

void rt_workload_encode_batch(const rt_workload *wl, const rt_wl_turn *t, const rt_wl_batch *b,
                              rt_buf *out)
{
    rt_buf spans = RT_BUF_INIT;
    for (size_t k = 0; k < b->n; k++) {
        rt_workload_append_span_field(&spans, t, t->order[b->first + k]);
    }
    rt_workload_encode_request(wl, b->service, spans.data, spans.len, out);
    rt_buf_free(&spans);
}

void rt_workload_manifest_line(const rt_workload *wl, const rt_wl_turn *t, rt_buf *out)
{
    char hex[33];
    hex_into(t->trace_id, 16, hex);
    rt_buf_printf(out, "{\"trace_id\":\"%s\",\"spans\":%zu,\"categories\":[", hex, t->n_spans);
    if (t->categories == 0) {
        rt_buf_append_str(out, "\"normal\"");
    }
    bool first = true;
    for (unsigned c = 0; c < RT_WL_NCATS; c++) {
        if (t->categories & (1u << c)) {
            rt_buf_printf(out, "%s\"%s\"", first ? "" : ",", category_names[c]);
            first = false;
        }
    }
    rt_buf_printf(out,
                  "],\"tenant\":\"%s\",\"duration_ms\":%llu,\"tool_calls\":%u,"
                  "\"input_tokens_sum\":%lld,\"output_tokens_sum\":%lld,\"agent\":\"%s\","
                  "\"kind\":\"%s\"}\n",
                  t->tenant, (unsigned long long)(t->duration_ns / 1000000ull), t->tool_calls,
                  (long long)t->input_tokens_sum, (long long)t->output_tokens_sum, t->agent,
                  rt_workload_kind_name(t->kind));
}

/* ---- rates and names -------------------------------------------------------------------- */

double rt_workload_rate_factor(const rt_workload *wl, double run_fraction)
{
    if (wl->o.profile == RT_WL_PROFILE_SPIKE && run_fraction >= 1.0 / 3 && run_fraction < 2.0 / 3) {
        return 10.0;
    }
    return 1.0;
}

double rt_workload_mean_rate_factor(const rt_workload *wl)
{
    return wl->o.profile == RT_WL_PROFILE_SPIKE ? 4.0 : 1.0;
}

static const char *const profile_names[] = {"seed", "mixed", "spike"};

int rt_workload_profile_parse(const char *s, rt_wl_profile *out)
{
    for (size_t i = 0; i < sizeof profile_names / sizeof profile_names[0]; i++) {
        if (strcmp(s, profile_names[i]) == 0) {
            *out = (rt_wl_profile)i;
            return 0;
        }
    }
    return -1;
}

const char *rt_workload_profile_name(rt_wl_profile p)
{
    return (size_t)p < sizeof profile_names / sizeof profile_names[0] ? profile_names[p] : "?";
}

const char *rt_workload_category_name(unsigned bit_index)
{
    return bit_index < RT_WL_NCATS ? category_names[bit_index] : NULL;
}

const char *rt_workload_kind_name(rt_wl_kind k)
{
    switch (k) {
    case RT_WL_KIND_QA:
        return "qa";
    case RT_WL_KIND_CHATTY:
        return "chatty";
    case RT_WL_KIND_TOOL:
    default:
        return "tool";
    }
}
