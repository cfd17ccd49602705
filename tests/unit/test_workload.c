/* test_workload.c - the agent workload model: deterministic by seed, every turn one well-formed
 * tree whose spans decode with protobuf-c, MCP server spans under their own resource, category
 * rates and spans per turn as configured, and a manifest that tells the truth about each turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alloc.h"
#include "otlp_gen.h"
#include "otlp_scan.h"
#include "workload.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;

#define T0 1700000000000000000ull

/* One decoded span with the service.name of the resource it arrived under. */
typedef struct dspan {
    Span *s;
    const char *service;
    size_t batch;
} dspan;

typedef struct decoded {
    Req *reqs[512];
    size_t n_reqs;
    dspan spans[1024];
    size_t n;
} decoded;

static const KV *find_kv(KV **kvs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kvs[i]->key, key) == 0) {
            return kvs[i];
        }
    }
    return NULL;
}

static const char *str_attr(const Span *s, const char *key)
{
    const KV *kv = find_kv(s->attributes, s->n_attributes, key);
    if (!kv || !kv->value ||
        kv->value->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        return NULL;
    }
    return kv->value->string_value;
}

/* Encode every batch of `t`, validate it with our own validator, decode it with protobuf-c. */
static void decode_turn(const rt_workload *wl, const rt_wl_turn *t, decoded *d)
{
    d->n_reqs = d->n = 0;
    for (size_t b = 0; b < t->n_batches; b++) {
        rt_buf req = RT_BUF_INIT;
        rt_workload_encode_batch(wl, t, &t->batches[b], &req);
        size_t count = 0;
        char err[256];
        int rc = rt_otlp_validate(req.data, req.len, &count, err, sizeof err);
        if (rc != 0) {
            fail_msg("batch %zu does not validate: %s", b, err);
        }
        assert_int_equal(count, t->batches[b].n);
        Req *r = rt_gen_unpack(req.data, req.len);
        assert_non_null(r);
        rt_buf_free(&req);
        assert_true(d->n_reqs < 512);
        d->reqs[d->n_reqs++] = r;
        assert_int_equal(r->n_resource_spans, 1);
        const KV *sn = find_kv(r->resource_spans[0]->resource->attributes,
                               r->resource_spans[0]->resource->n_attributes, "service.name");
        assert_non_null(sn);
        for (size_t j = 0; j < r->resource_spans[0]->n_scope_spans; j++) {
            Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = r->resource_spans[0]->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                assert_true(d->n < 1024);
                d->spans[d->n++] = (dspan){ss->spans[k], sn->value->string_value, b};
            }
        }
    }
}

static void decoded_free(decoded *d)
{
    for (size_t i = 0; i < d->n_reqs; i++) {
        rt_gen_unpack_free(d->reqs[i]);
    }
    d->n_reqs = d->n = 0;
}

static bool is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

static ssize_t find_span(const decoded *d, const uint8_t *id)
{
    for (size_t i = 0; i < d->n; i++) {
        if (memcmp(d->spans[i].s->span_id.data, id, 8) == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

static void same_seed_same_turns(void **state)
{
    rt_workload *a = rt_workload_new(RT_WL_PROFILE_MIXED, 7);
    rt_workload *b = rt_workload_new(RT_WL_PROFILE_MIXED, 7);
    rt_workload *c = rt_workload_new(RT_WL_PROFILE_MIXED, 8);
    rt_buf ma = RT_BUF_INIT, mb = RT_BUF_INIT;
    for (int i = 0; i < 200; i++) {
        const rt_wl_turn *ta = rt_workload_next(a, T0 + (uint64_t)i);
        const rt_wl_turn *tb = rt_workload_next(b, T0 + (uint64_t)i);
        const rt_wl_turn *tc = rt_workload_next(c, T0 + (uint64_t)i);
        assert_memory_equal(ta->trace_id, tb->trace_id, 16);
        assert_memory_not_equal(ta->trace_id, tc->trace_id, 16);
        assert_int_equal(ta->pb.len, tb->pb.len);
        assert_memory_equal(ta->pb.data, tb->pb.data, ta->pb.len);
        assert_int_equal(ta->n_batches, tb->n_batches);
        for (size_t k = 0; k < ta->n_batches; k++) {
            assert_int_equal(ta->batches[k].send_off_ns, tb->batches[k].send_off_ns);
            assert_int_equal(ta->batches[k].n, tb->batches[k].n);
        }
        rt_workload_manifest_line(a, ta, &ma);
        rt_workload_manifest_line(b, tb, &mb);
    }
    assert_int_equal(ma.len, mb.len);
    assert_memory_equal(ma.data, mb.data, ma.len);
    rt_buf_free(&ma);
    rt_buf_free(&mb);
    rt_workload_free(a);
    rt_workload_free(b);
    rt_workload_free(c);
}

/* Check one turn thoroughly against its decoded spans and its manifest line. */
static void check_turn(const rt_workload *wl, const rt_wl_turn *t, decoded *d)
{
    decode_turn(wl, t, d);
    assert_int_equal(d->n, t->n_spans);
    assert_false(is_zero(t->trace_id, 16));

    size_t roots = 0, root_i = 0, execs = 0;
    for (size_t i = 0; i < d->n; i++) {
        const Span *s = d->spans[i].s;
        assert_int_equal(s->trace_id.len, 16);
        assert_memory_equal(s->trace_id.data, t->trace_id, 16);
        assert_int_equal(s->span_id.len, 8);
        assert_false(is_zero(s->span_id.data, 8));
        assert_true(s->end_time_unix_nano >= s->start_time_unix_nano);
        assert_true(s->start_time_unix_nano >= T0);
        for (size_t j = 0; j < i; j++) {
            assert_memory_not_equal(s->span_id.data, d->spans[j].s->span_id.data, 8);
        }
        if (s->parent_span_id.len == 0) {
            roots++;
            root_i = i;
        } else {
            assert_int_equal(s->parent_span_id.len, 8);
            assert_true(find_span(d, s->parent_span_id.data) >= 0);
        }
        if (strncmp(s->name, "execute_tool ", 13) == 0) {
            execs++;
            assert_string_equal(str_attr(s, "gen_ai.operation.name"), "execute_tool");
            assert_non_null(str_attr(s, "gen_ai.tool.call.id"));
        }
    }
    assert_int_equal(roots, 1);
    const Span *root = d->spans[root_i].s;
    assert_true(strncmp(root->name, "invoke_agent ", 13) == 0);
    assert_string_equal(str_attr(root, "tenant.id"), t->tenant);
    assert_non_null(str_attr(root, "gen_ai.conversation.id"));
    assert_string_equal(str_attr(root, "gen_ai.agent.name"), t->agent);
    assert_int_equal(execs, t->tool_calls);

    /* One tree: every parent chain reaches the root. */
    for (size_t i = 0; i < d->n; i++) {
        size_t cur = i, steps = 0;
        while (d->spans[cur].s->parent_span_id.len) {
            cur = (size_t)find_span(d, d->spans[cur].s->parent_span_id.data);
            assert_true(++steps <= d->n);
        }
        assert_int_equal(cur, root_i);
    }

    /* MCP server spans: their own service, under an agent-side client span. */
    bool any_error = false;
    const Span *last_chat = NULL;
    size_t chats = 0;
    int64_t in_sum = 0;
    for (size_t i = 0; i < d->n; i++) {
        const Span *s = d->spans[i].s;
        if (s->kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER) {
            assert_true(strncmp(s->name, "tools/call ", 11) == 0);
            assert_true(strncmp(d->spans[i].service, "mcp-", 4) == 0);
            assert_string_not_equal(d->spans[i].service, d->spans[root_i].service);
            const dspan *parent = &d->spans[find_span(d, s->parent_span_id.data)];
            assert_int_equal(parent->s->kind,
                             OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
            assert_string_equal(parent->service, d->spans[root_i].service);
            assert_string_equal(str_attr(s, "mcp.method.name"), "tools/call");
        }
        if (s->status &&
            s->status->code ==
                OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR) {
            any_error = true;
            assert_non_null(str_attr(s, "error.type"));
        }
        if (strncmp(s->name, "chat ", 5) == 0) {
            chats++;
            const KV *fr =
                find_kv(s->attributes, s->n_attributes, "gen_ai.response.finish_reasons");
            assert_non_null(fr);
            assert_int_equal(fr->value->value_case,
                             OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
            assert_true(fr->value->array_value->n_values >= 1);
            assert_int_equal(fr->value->array_value->values[0]->value_case,
                             OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
            const KV *it = find_kv(s->attributes, s->n_attributes, "gen_ai.usage.input_tokens");
            assert_non_null(it);
            assert_int_equal(it->value->value_case,
                             OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
            in_sum += it->value->int_value;
            if (!last_chat || s->start_time_unix_nano > last_chat->start_time_unix_nano) {
                last_chat = s;
            }
        }
    }
    assert_int_equal(chats, t->chats);
    assert_int_equal(in_sum, t->input_tokens_sum);
    assert_non_null(last_chat);

    /* The categories say what the spans show. */
    assert_int_equal(any_error, (t->categories & RT_WL_CAT_ERROR) != 0);
    uint64_t dur = root->end_time_unix_nano - root->start_time_unix_nano;
    assert_int_equal(dur > 10000000000ull, (t->categories & RT_WL_CAT_SLOW) != 0);
    const KV *fr =
        find_kv(last_chat->attributes, last_chat->n_attributes, "gen_ai.response.finish_reasons");
    bool length = strcmp(fr->value->array_value->values[0]->string_value, "length") == 0;
    assert_int_equal(length, (t->categories & RT_WL_CAT_TOKEN_LIMIT) != 0);
    const char *tenant = str_attr(root, "tenant.id");
    bool debug = strcmp(tenant, "acme-corp") == 0 || strcmp(tenant, "big-bank-inc") == 0;
    assert_int_equal(debug, (t->categories & RT_WL_CAT_DEBUG_TENANT) != 0);
    assert_int_equal(execs >= 25, (t->categories & RT_WL_CAT_TOOL_HEAVY) != 0);

    /* The manifest line agrees. */
    rt_buf line = RT_BUF_INIT;
    rt_workload_manifest_line(wl, t, &line);
    assert_int_equal(line.data[line.len - 1], '\n');
    json_error_t jerr;
    json_t *j = json_loadb((const char *)line.data, line.len, 0, &jerr);
    assert_non_null(j);
    char hex[33];
    assert_string_equal(json_string_value(json_object_get(j, "trace_id")),
                        rt_workload_hex(t->trace_id, 16, hex));
    assert_int_equal(json_integer_value(json_object_get(j, "spans")), d->n);
    assert_int_equal(json_integer_value(json_object_get(j, "tool_calls")), execs);
    assert_int_equal(json_integer_value(json_object_get(j, "duration_ms")), dur / 1000000);
    assert_int_equal(json_integer_value(json_object_get(j, "input_tokens_sum")), in_sum);
    assert_string_equal(json_string_value(json_object_get(j, "tenant")), tenant);
    json_t *cats = json_object_get(j, "categories");
    assert_true(json_array_size(cats) >= 1);
    unsigned bits = 0;
    for (size_t k = 0; k < json_array_size(cats); k++) {
        const char *name = json_string_value(json_array_get(cats, k));
        if (strcmp(name, "normal") == 0) {
            assert_int_equal(json_array_size(cats), 1);
            continue;
        }
        unsigned c = 0;
        while (c < RT_WL_NCATS && strcmp(rt_workload_category_name(c), name) != 0) {
            c++;
        }
        assert_true(c < RT_WL_NCATS);
        bits |= 1u << c;
    }
    assert_int_equal(bits, t->categories);
    json_decref(j);
    rt_buf_free(&line);
    decoded_free(d);
}

static void turns_are_trees_and_manifest_is_true(void **state)
{
    decoded *d = rt_calloc(1, sizeof *d);
    rt_workload_opts o;
    /* High rates so every category shows up in a few hundred turns. */
    rt_workload_opts_default(&o, RT_WL_PROFILE_SEED, 99);
    o.error_rate = o.slow_rate = o.token_limit_rate = o.debug_tenant_rate = 0.2;
    o.tool_heavy_rate = 0.3;
    rt_workload *wl = rt_workload_new_opts(&o, NULL, 0);
    assert_non_null(wl);
    unsigned seen = 0;
    for (int i = 0; i < 300; i++) {
        const rt_wl_turn *t = rt_workload_next(wl, T0);
        check_turn(wl, t, d);
        seen |= t->categories;
    }
    assert_int_equal(seen, (1u << RT_WL_NCATS) - 1);
    rt_workload_free(wl);

    /* The mixed profile's short turns too. */
    wl = rt_workload_new(RT_WL_PROFILE_MIXED, 5);
    for (int i = 0; i < 300; i++) {
        check_turn(wl, rt_workload_next(wl, T0), d);
    }
    rt_workload_free(wl);
    free(d);
}

static void seed_rates_and_size_match_the_spec(void **state)
{
    rt_workload *wl = rt_workload_new(RT_WL_PROFILE_SEED, 2024);
    const int n = 2000;
    size_t cat_count[RT_WL_NCATS] = {0}, spans = 0, acme = 0, bigbank = 0, top = 0;
    size_t under15 = 0, pb_spans = 0;
    for (int i = 0; i < n; i++) {
        const rt_wl_turn *t = rt_workload_next(wl, T0);
        for (unsigned c = 0; c < RT_WL_NCATS; c++) {
            cat_count[c] += (t->categories >> c) & 1;
        }
        spans += t->n_spans;
        /* Count spans in the encoded batches: the manifest's count is what is sent. */
        for (size_t b = 0; b < t->n_batches; b++) {
            pb_spans += t->batches[b].n;
        }
        acme += strcmp(t->tenant, "acme-corp") == 0;
        bigbank += strcmp(t->tenant, "big-bank-inc") == 0;
        top += strcmp(t->tenant, "globex") == 0;
        under15 += t->duration_ns < 15000000000ull;
    }
    assert_int_equal(pb_spans, spans);
    double mean = (double)spans / n;
    print_message("seed: %.1f spans/turn; error %zu slow %zu token_limit %zu debug %zu heavy %zu "
                  "of %d; acme %zu big-bank %zu globex %zu\n",
                  mean, cat_count[0], cat_count[1], cat_count[2], cat_count[3], cat_count[4], n,
                  acme, bigbank, top);
    assert_true(mean >= 70 && mean <= 90);
    /* Expected rates 3 %, 2 %, 2 %, 2 %, 15 %; allow about four standard deviations. */
    const double want[RT_WL_NCATS] = {0.03, 0.02, 0.02, 0.02, 0.15};
    const double tol[RT_WL_NCATS] = {0.016, 0.013, 0.013, 0.013, 0.032};
    for (unsigned c = 0; c < RT_WL_NCATS; c++) {
        double got = (double)cat_count[c] / n;
        if (got < want[c] - tol[c] || got > want[c] + tol[c]) {
            fail_msg("%s rate %.3f, want %.3f +- %.3f", rt_workload_category_name(c), got, want[c],
                     tol[c]);
        }
    }
    assert_true(acme > 0 && bigbank > 0);
    /* Zipf: the biggest tenant carries far more than the debug tenants' small share. */
    assert_true(top > 5 * (acme + bigbank) / 2);
    assert_true(under15 > (size_t)n * 9 / 10);
    rt_workload_free(wl);
}

static void mixed_has_short_turns(void **state)
{
    rt_workload *wl = rt_workload_new(RT_WL_PROFILE_MIXED, 3);
    size_t qa = 0, small = 0, chatty = 0, spans = 0;
    for (int i = 0; i < 1000; i++) {
        const rt_wl_turn *t = rt_workload_next(wl, T0);
        qa += t->kind == RT_WL_KIND_QA;
        chatty += t->kind == RT_WL_KIND_CHATTY;
        small += t->n_spans <= 10;
        spans += t->n_spans;
    }
    assert_true(qa > 300 && qa < 500);
    assert_true(chatty > 130 && chatty < 270);
    assert_true(small >= qa);
    assert_true(spans / 1000 < 60);
    rt_workload_free(wl);
}

static void batches_cover_each_span_once_per_service(void **state)
{
    rt_workload_opts o;
    rt_workload_opts_default(&o, RT_WL_PROFILE_SEED, 11);
    o.batch_max_spans = 7;
    o.late_rate = 0.5;
    rt_workload *wl = rt_workload_new_opts(&o, NULL, 0);
    bool late_seen = false;
    for (int i = 0; i < 100; i++) {
        const rt_wl_turn *t = rt_workload_next(wl, T0);
        uint8_t *seen = rt_calloc(t->n_spans, 1);
        uint64_t prev = 0;
        for (size_t b = 0; b < t->n_batches; b++) {
            const rt_wl_batch *bt = &t->batches[b];
            assert_true(bt->n >= 1 && bt->n <= 7);
            assert_true(bt->send_off_ns >= prev);
            prev = bt->send_off_ns;
            for (size_t k = 0; k < bt->n; k++) {
                uint32_t si = t->order[bt->first + k];
                assert_true(si < t->n_spans);
                assert_int_equal(seen[si], 0);
                seen[si] = 1;
                assert_int_equal(t->spans[si].service, bt->service);
                assert_true(t->spans[si].ready_off_ns <= bt->send_off_ns);
                assert_true(t->spans[si].ready_off_ns >= t->spans[si].end_off_ns);
                late_seen |= t->spans[si].ready_off_ns > t->spans[si].end_off_ns;
            }
        }
        for (size_t s = 0; s < t->n_spans; s++) {
            assert_int_equal(seen[s], 1);
        }
        free(seen);
        /* The root ends last, so the agent's last batch carries it at the turn's end. */
        assert_true(t->batches[t->n_batches - 1].send_off_ns >= t->duration_ns);
    }
    assert_true(late_seen);
    rt_workload_free(wl);
}

static void profiles_rates_and_bad_options(void **state)
{
    rt_wl_profile p;
    assert_int_equal(rt_workload_profile_parse("spike", &p), 0);
    assert_int_equal(p, RT_WL_PROFILE_SPIKE);
    assert_int_equal(rt_workload_profile_parse("nope", &p), -1);
    rt_workload *wl = rt_workload_new(RT_WL_PROFILE_SPIKE, 1);
    assert_true(rt_workload_rate_factor(wl, 0.1) == 1.0);
    assert_true(rt_workload_rate_factor(wl, 0.5) == 10.0);
    assert_true(rt_workload_rate_factor(wl, 0.9) == 1.0);
    rt_workload_free(wl);
    wl = rt_workload_new(RT_WL_PROFILE_SEED, 1);
    assert_true(rt_workload_rate_factor(wl, 0.5) == 1.0);
    rt_workload_free(wl);

    rt_workload_opts o;
    char err[200];
    rt_workload_opts_default(&o, RT_WL_PROFILE_SEED, 1);
    o.slow_rate = 1.5;
    assert_null(rt_workload_new_opts(&o, err, sizeof err));
    assert_non_null(strstr(err, "slow rate"));
    rt_workload_opts_default(&o, RT_WL_PROFILE_SEED, 1);
    o.tool_heavy_min = 3;
    assert_null(rt_workload_new_opts(&o, err, sizeof err));
    assert_non_null(strstr(err, "tool_heavy_min"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_same_turns),
        cmocka_unit_test(turns_are_trees_and_manifest_is_true),
        cmocka_unit_test(seed_rates_and_size_match_the_spec),
        cmocka_unit_test(mixed_has_short_turns),
        cmocka_unit_test(batches_cover_each_span_once_per_service),
        cmocka_unit_test(profiles_rates_and_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
