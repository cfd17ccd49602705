/* bench_request.h - the 512-span agent-shaped request both per-span cost tools measure
 * (codec_cost.c, router_cost.c), so their figures are comparable. Header-only: each bench tool
 * is its own executable and links only libringtail. */
#ifndef RT_BENCH_REQUEST_H
#define RT_BENCH_REQUEST_H

#include "alloc.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;

static uint64_t rng = 0x1234567;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static KV *kv_str(const char *k, const char *v)
{
    KV *kv = rt_calloc(1, sizeof *kv);
    AV *av = rt_calloc(1, sizeof *av);
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = (char *)v;
    kv->key = (char *)k;
    kv->value = av;
    return kv;
}

static KV *kv_int(const char *k, int64_t v)
{
    KV *kv = kv_str(k, "");
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    kv->value->int_value = v;
    return kv;
}

/* One request of `n` spans from n/80 agent turns, as an SDK batch would carry them. The
 * tree is leaked on purpose: it lives for the whole run. */
static uint8_t *build_request(size_t n, size_t *len)
{
    static const char *names[] = {"chat gpt-4o", "execute_tool search", "tools/call search",
                                  "chat gpt-4o", "execute_tool fetch"};
    Opentelemetry__Proto__Trace__V1__Span **spans = rt_calloc(n, sizeof *spans);
    uint8_t tid[16] = {0};
    for (size_t i = 0; i < n; i++) {
        if (i % 80 == 0) {
            for (int b = 0; b < 16; b++) {
                tid[b] = (uint8_t)next_rand();
            }
        }
        Opentelemetry__Proto__Trace__V1__Span *sp = rt_calloc(1, sizeof *sp);
        opentelemetry__proto__trace__v1__span__init(sp);
        sp->trace_id.len = 16;
        sp->trace_id.data = rt_malloc(16);
        memcpy(sp->trace_id.data, tid, 16);
        sp->span_id.len = 8;
        sp->span_id.data = rt_malloc(8);
        uint64_t sid = next_rand();
        memcpy(sp->span_id.data, &sid, 8);
        if (i % 80 != 0) {
            sp->parent_span_id.len = 8;
            sp->parent_span_id.data = rt_malloc(8);
            memcpy(sp->parent_span_id.data, &sid, 8);
        }
        sp->name = (char *)(i % 80 == 0 ? "invoke_agent support-bot" : names[i % 5]);
        sp->kind = 3;
        sp->start_time_unix_nano = 1763700000000000000ull + i * 1000000ull;
        sp->end_time_unix_nano = sp->start_time_unix_nano + 250000000ull;
        sp->n_attributes = 6;
        sp->attributes = rt_calloc(6, sizeof(KV *));
        sp->attributes[0] = kv_str("gen_ai.operation.name", i % 5 == 1 ? "execute_tool" : "chat");
        sp->attributes[1] = kv_str("gen_ai.provider.name", "openai");
        sp->attributes[2] = kv_str("gen_ai.request.model", "gpt-4o");
        sp->attributes[3] = kv_int("gen_ai.usage.input_tokens", 1200 + (int64_t)(i % 700));
        sp->attributes[4] = kv_int("gen_ai.usage.output_tokens", 80 + (int64_t)(i % 300));
        sp->attributes[5] = kv_str("gen_ai.conversation.id", "conv-6f1d2c8e");
        spans[i] = sp;
    }
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
        OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = n;
    ss.spans = spans;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
    Opentelemetry__Proto__Resource__V1__Resource res =
        OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    KV *rattrs[2] = {kv_str("service.name", "agent-runtime"), kv_str("tenant.id", "acme-corp")};
    res.n_attributes = 2;
    res.attributes = rattrs;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.resource = &res;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    *len =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
            &req);
    uint8_t *buf = rt_malloc(*len);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
    return buf;

#endif
