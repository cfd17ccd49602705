/* test_otlp_json.c - OTLP/JSON <-> protobuf conversion: every JSON rule by hand-written cases,
 * plus a pb -> JSON -> pb round-trip property over generated requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "alloc.h"
#include "buf.h"
#include "otlp_gen.h"
#include "otlp_json.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

#define REQ_DESC                                                                                   \
    (&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor)

/* ----- helpers ---------------------------------------------------------------------------- */

/* Convert JSON to pb; the conversion must succeed. Returns the bytes in *out (caller frees). */
static void to_pb_ok(const char *json, rt_buf *out)
{
    char err[512] = "";
    rt_buf_init(out);
    int rc = rt_otlp_json_to_pb(json, strlen(json), out, err, sizeof(err));
    if (rc != 0) {
        print_error("unexpected error: %s\n", err);
    }
    assert_int_equal(rc, 0);
}

/* Convert JSON and unpack the result with protobuf-c. Free with free_req(). */
static Request *decode(const char *json)
{
    rt_buf pb;
    to_pb_ok(json, &pb);
    Request *req = (Request *)protobuf_c_message_unpack(REQ_DESC, NULL, pb.len, pb.data);
    assert_non_null(req);
    rt_buf_free(&pb);
    return req;
}

static void free_req(Request *req)
{
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* The conversion must fail with an error containing `want`; nothing may be appended. */
static void expect_error(const char *json, const char *want)
{
    char err[512] = "";
    rt_buf out = RT_BUF_INIT;
    rt_buf_append_str(&out, "keep");
    int rc = rt_otlp_json_to_pb(json, strlen(json), &out, err, sizeof(err));
    if (rc == 0 || strstr(err, want) == NULL) {
        print_error("json: %s\nerror: \"%s\"\nwanted it to contain: \"%s\"\n", json, err, want);
    }
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, want));
    assert_int_equal(out.len, 4);
    rt_buf_free(&out);
}

/* Wrap a span body in the three outer levels of a request. */
static char *with_span(const char *span_json)
{
    return rt_sprintf("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[%s]}]}]}", span_json);
}

static Span *only_span(Request *req)
{
    assert_int_equal(req->n_resource_spans, 1);
    assert_int_equal(req->resource_spans[0]->n_scope_spans, 1);
    assert_int_equal(req->resource_spans[0]->scope_spans[0]->n_spans, 1);
    return req->resource_spans[0]->scope_spans[0]->spans[0];
}

/* JSON -> pb must produce exactly the same bytes for both documents. */
static void assert_same_pb(const char *a, const char *b)
{
    rt_buf pa;
    rt_buf pbb;
    to_pb_ok(a, &pa);
    to_pb_ok(b, &pbb);
    assert_int_equal(pa.len, pbb.len);
    assert_memory_equal(pa.data, pbb.data, pa.len);
    assert_true(pa.len > 0);
    rt_buf_free(&pa);
    rt_buf_free(&pbb);
}

/* Render a pb request as JSON and parse that with jansson. */
static json_t *pb_to_json_tree(const uint8_t *pb, size_t len)
{
    char err[256] = "";
    rt_buf out = RT_BUF_INIT;
    int rc = rt_otlp_pb_to_json(pb, len, &out, err, sizeof(err));
    if (rc != 0) {
        print_error("pb_to_json: %s\n", err);
    }
    assert_int_equal(rc, 0);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)out.data, out.len, 0, &jerr);
    if (root == NULL) {
        print_error("output is not JSON: %s: %.*s\n", jerr.text, (int)out.len, (char *)out.data);
    }
    assert_non_null(root);
    rt_buf_free(&out);
    return root;
}

/* JSON -> pb -> JSON tree. */
static json_t *json_round(const char *json)
{
    rt_buf pb;
    to_pb_ok(json, &pb);
    json_t *root = pb_to_json_tree(pb.data, pb.len);
    rt_buf_free(&pb);
    return root;
}

/* The first span object of a JSON request tree (borrowed). */
static json_t *first_span_json(json_t *root)
{
    json_t *rs = json_array_get(json_object_get(root, "resourceSpans"), 0);
    json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
    json_t *span = json_array_get(json_object_get(ss, "spans"), 0);
    assert_non_null(span);
    return span;
}

static AnyValue *attr_value(Span *s, size_t i)
{
    assert_true(i < s->n_attributes);
    assert_non_null(s->attributes[i]->value);
    return s->attributes[i]->value;
}

/* ----- ids ---------------------------------------------------------------------------------- */

static void test_ids_hex_case_insensitive_and_lowercase_out(void **state)
{
    char *json = with_span("{\"traceId\":\"5B8EFFF798038103D269B633813FC60C\","
                           "\"spanId\":\"EEE19b7eC3c1b174\",\"parentSpanId\":\"aaBBccDDeeFF0011\","
                           "\"links\":[{\"traceId\":\"0123456789ABCDEF0123456789abcdef\","
                           "\"spanId\":\"FEDCBA9876543210\"}]}");
    static const uint8_t trace[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                                      0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
    static const uint8_t span[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};
    static const uint8_t parent[8] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11};
    Request *req = decode(json);
    Span *s = only_span(req);
    assert_int_equal(s->trace_id.len, 16);
    assert_memory_equal(s->trace_id.data, trace, 16);
    assert_int_equal(s->span_id.len, 8);
    assert_memory_equal(s->span_id.data, span, 8);
    assert_int_equal(s->parent_span_id.len, 8);
    assert_memory_equal(s->parent_span_id.data, parent, 8);
    assert_int_equal(s->n_links, 1);
    assert_int_equal(s->links[0]->trace_id.data[15], 0xef);
    assert_int_equal(s->links[0]->span_id.data[0], 0xfe);
    free_req(req);

    json_t *root = json_round(json);
    json_t *js = first_span_json(root);
    assert_string_equal(json_string_value(json_object_get(js, "traceId")),
                        "5b8efff798038103d269b633813fc60c");
    assert_string_equal(json_string_value(json_object_get(js, "spanId")), "eee19b7ec3c1b174");
    assert_string_equal(json_string_value(json_object_get(js, "parentSpanId")), "aabbccddeeff0011");
    json_t *link = json_array_get(json_object_get(js, "links"), 0);
    assert_string_equal(json_string_value(json_object_get(link, "traceId")),
                        "0123456789abcdef0123456789abcdef");
    assert_string_equal(json_string_value(json_object_get(link, "spanId")), "fedcba9876543210");
    json_decref(root);
    free(json);
}

static void test_ids_empty_means_absent(void **state)
{
    char *json = with_span("{\"traceId\":\"5b8efff798038103d269b633813fc60c\","
                           "\"spanId\":\"eee19b7ec3c1b174\",\"parentSpanId\":\"\"}");
    Request *req = decode(json);
    assert_int_equal(only_span(req)->parent_span_id.len, 0);
    free_req(req);
    json_t *root = json_round(json);
    assert_null(json_object_get(first_span_json(root), "parentSpanId"));
    json_decref(root);
    free(json);
}

static void test_ids_base64_and_bad_lengths_rejected_with_path(void **state)
{
    /* The third span carries the base64 form of a valid trace id. */
    const char *json = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
                       "{\"traceId\":\"5b8efff798038103d269b633813fc60c\"},"
                       "{\"traceId\":\"5b8efff798038103d269b633813fc60c\"},"
                       "{\"traceId\":\"W47/95gDgQPSabYzgT/GDA==\"}]}]}]}";
    expect_error(json, "resourceSpans[0].scopeSpans[0].spans[2].traceId: expected 32 hex digits");

    char *j;
    j = with_span("{\"spanId\":\"eee19b7ec3c1b17\"}");
    expect_error(j, "spans[0].spanId: expected 16 hex digits");
    free(j);
    j = with_span("{\"parentSpanId\":\"eee19b7ec3c1b1zz\"}");
    expect_error(j, "spans[0].parentSpanId: expected 16 hex digits");
    free(j);
    j = with_span("{\"links\":[{},{\"traceId\":\"5b8efff798038103d269b633813fc60\"}]}");
    expect_error(j, "spans[0].links[1].traceId: expected 32 hex digits");
    free(j);
    j = with_span("{\"links\":[{\"span_id\":\"7u3hm+w8sXQ=\"}]}");
    expect_error(j, "spans[0].links[0].span_id: expected 16 hex digits");
    free(j);
    j = with_span("{\"traceId\":12}");
    expect_error(j, "spans[0].traceId: expected a string");
    free(j);
}

/* ----- integers ----------------------------------------------------------------------------- */

static void test_int64_as_string_and_number(void **state)
{
    char *json = with_span(
        "{\"startTimeUnixNano\":\"1700000000000000001\",\"endTimeUnixNano\":1700000000000000002,"
        "\"events\":[{\"timeUnixNano\":\"18446744073709551615\"},{\"timeUnixNano\":1e3}],"
        "\"attributes\":[{\"key\":\"a\",\"value\":{\"intValue\":\"-9223372036854775808\"}},"
        "{\"key\":\"b\",\"value\":{\"intValue\":9223372036854775807}},"
        "{\"key\":\"c\",\"value\":{\"intValue\":\"-42\"}}]}");
    Request *req = decode(json);
    Span *s = only_span(req);
    assert_true(s->start_time_unix_nano == 1700000000000000001ULL);
    assert_true(s->end_time_unix_nano == 1700000000000000002ULL);
    assert_true(s->events[0]->time_unix_nano == UINT64_MAX);
    assert_true(s->events[1]->time_unix_nano == 1000);
    assert_true(attr_value(s, 0)->int_value == INT64_MIN);
    assert_true(attr_value(s, 1)->int_value == INT64_MAX);
    assert_true(attr_value(s, 2)->int_value == -42);
    free_req(req);

    /* Output: 64-bit integers as decimal strings. */
    json_t *root = json_round(json);
    json_t *js = first_span_json(root);
    assert_string_equal(json_string_value(json_object_get(js, "startTimeUnixNano")),
                        "1700000000000000001");
    assert_string_equal(json_string_value(json_object_get(js, "endTimeUnixNano")),
                        "1700000000000000002");
    json_t *ev = json_array_get(json_object_get(js, "events"), 0);
    assert_string_equal(json_string_value(json_object_get(ev, "timeUnixNano")),
                        "18446744073709551615");
    json_t *attr = json_array_get(json_object_get(js, "attributes"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(attr, "value"), "intValue")),
        "-9223372036854775808");
    json_decref(root);
    free(json);
}

static void test_integers_reject_fractions_garbage_and_overflow(void **state)
{
    static const struct {
        const char *span;
        const char *want;
    } cases[] = {
        {"{\"startTimeUnixNano\":1.5}", "spans[0].startTimeUnixNano: expected an integer"},
        {"{\"startTimeUnixNano\":\"12a\"}", "spans[0].startTimeUnixNano: expected a decimal"},
        {"{\"startTimeUnixNano\":\"\"}", "spans[0].startTimeUnixNano: expected a decimal"},
        {"{\"startTimeUnixNano\":\" 12\"}", "spans[0].startTimeUnixNano: expected a decimal"},
        {"{\"endTimeUnixNano\":-1}", "spans[0].endTimeUnixNano: -1 is out of range"},
        {"{\"endTimeUnixNano\":\"-1\"}", "spans[0].endTimeUnixNano: expected a decimal"},
        {"{\"endTimeUnixNano\":\"18446744073709551616\"}", "endTimeUnixNano: integer is out of"},
        {"{\"endTimeUnixNano\":true}", "endTimeUnixNano: expected an integer"},
        {"{\"attributes\":[{\"value\":{\"intValue\":\"9223372036854775808\"}}]}",
         "spans[0].attributes[0].value.intValue: integer is out of the 64-bit signed range"},
        {"{\"attributes\":[{\"value\":{\"intValue\":2.25}}]}",
         "spans[0].attributes[0].value.intValue: expected a 64-bit integer"},
        {"{\"attributes\":[{\"value\":{\"intValue\":\"0x10\"}}]}",
         "attributes[0].value.intValue: expected a decimal integer string"},
        {"{\"droppedAttributesCount\":4294967296}", "droppedAttributesCount: 4294967296 is out"},
        {"{\"droppedEventsCount\":\"x\"}", "spans[0].droppedEventsCount: expected a decimal"},
        {"{\"flags\":-3}", "spans[0].flags: -3 is out of range"},
        {"{\"links\":[{\"flags\":0.5}]}", "spans[0].links[0].flags: expected an integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *j = with_span(cases[i].span);
        expect_error(j, cases[i].want);
        free(j);
    }
}

static void test_uint32_and_fixed32_fields_are_numbers(void **state)
{
    char *json = with_span("{\"droppedAttributesCount\":\"7\",\"droppedEventsCount\":8,"
                           "\"droppedLinksCount\":4294967295,\"flags\":769,"
                           "\"links\":[{\"flags\":257,\"droppedAttributesCount\":3}]}");
    Request *req = decode(json);
    Span *s = only_span(req);
    assert_int_equal(s->dropped_attributes_count, 7);
    assert_int_equal(s->dropped_events_count, 8);
    assert_int_equal(s->dropped_links_count, 4294967295u);
    assert_int_equal(s->flags, 769);
    assert_int_equal(s->links[0]->flags, 257);
    assert_int_equal(s->links[0]->dropped_attributes_count, 3);
    free_req(req);

    json_t *root = json_round(json);
    json_t *js = first_span_json(root);
    assert_true(json_is_integer(json_object_get(js, "droppedAttributesCount")));
    assert_int_equal(json_integer_value(json_object_get(js, "droppedAttributesCount")), 7);
    assert_int_equal(json_integer_value(json_object_get(js, "droppedLinksCount")), 4294967295LL);
    assert_int_equal(json_integer_value(json_object_get(js, "flags")), 769);
    json_t *link = json_array_get(json_object_get(js, "links"), 0);
    assert_int_equal(json_integer_value(json_object_get(link, "flags")), 257);
    json_decref(root);
    free(json);
}

/* ----- enums -------------------------------------------------------------------------------- */

static void test_enums_names_and_numbers_in_integers_out(void **state)
{
    const char *json =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
        "{\"kind\":\"SPAN_KIND_SERVER\",\"status\":{\"code\":\"STATUS_CODE_ERROR\"}},"
        "{\"kind\":3,\"status\":{\"code\":1}},"
        "{\"kind\":\"SPAN_KIND_CONSUMER\",\"status\":{\"code\":\"STATUS_CODE_OK\"}},"
        "{\"kind\":\"SPAN_KIND_UNSPECIFIED\",\"status\":{\"code\":0}}]}]}]}";
    Request *req = decode(json);
    Span **spans = req->resource_spans[0]->scope_spans[0]->spans;
    assert_int_equal(spans[0]->kind, 2);
    assert_int_equal(spans[0]->status->code, 2);
    assert_int_equal(spans[1]->kind, 3);
    assert_int_equal(spans[1]->status->code, 1);
    assert_int_equal(spans[2]->kind, 5);
    assert_int_equal(spans[2]->status->code, 1);
    assert_int_equal(spans[3]->kind, 0);
    assert_non_null(spans[3]->status);
    assert_int_equal(spans[3]->status->code, 0);
    free_req(req);

    json_t *root = json_round(json);
    json_t *js = first_span_json(root);
    assert_true(json_is_integer(json_object_get(js, "kind")));
    assert_int_equal(json_integer_value(json_object_get(js, "kind")), 2);
    json_t *code = json_object_get(json_object_get(js, "status"), "code");
    assert_true(json_is_integer(code));
    assert_int_equal(json_integer_value(code), 2);
    json_decref(root);

    char *j = with_span("{\"kind\":\"SERVER\"}");
    expect_error(j, "spans[0].kind: unknown enum name \"SERVER\"");
    free(j);
    j = with_span("{\"status\":{\"code\":\"STATUS_CODE_BROKEN\"}}");
    expect_error(j, "spans[0].status.code: unknown enum name");
    free(j);
    j = with_span("{\"kind\":1.5}");
    expect_error(j, "spans[0].kind: expected an enum number or name");
    free(j);
}

/* ----- key spelling, unknown fields, null --------------------------------------------------- */

static const char full_camel[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
    "\"value\":{\"stringValue\":\"svc\"}}],\"droppedAttributesCount\":2},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"lib\",\"version\":\"1.2\",\"attributes\":"
    "[{\"key\":\"s\",\"value\":{\"boolValue\":true}}],\"droppedAttributesCount\":3},"
    "\"spans\":[{\"traceId\":\"5b8efff798038103d269b633813fc60c\","
    "\"spanId\":\"eee19b7ec3c1b174\",\"traceState\":\"ot=th:c\","
    "\"parentSpanId\":\"eee19b7ec3c1b173\",\"name\":\"GET /\",\"kind\":2,"
    "\"startTimeUnixNano\":\"100\",\"endTimeUnixNano\":\"200\","
    "\"attributes\":[{\"key\":\"i\",\"value\":{\"intValue\":\"5\"}},"
    "{\"key\":\"d\",\"value\":{\"doubleValue\":1.5}},"
    "{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"x\"}]}}},"
    "{\"key\":\"kv\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"k\","
    "\"value\":{\"bytesValue\":\"AAE=\"}}]}}}],"
    "\"droppedAttributesCount\":4,\"events\":[{\"timeUnixNano\":\"150\",\"name\":\"ev\","
    "\"attributes\":[{\"key\":\"e\",\"value\":{\"intValue\":\"1\"}}],"
    "\"droppedAttributesCount\":5}],\"droppedEventsCount\":6,"
    "\"links\":[{\"traceId\":\"5b8efff798038103d269b633813fc60d\","
    "\"spanId\":\"eee19b7ec3c1b175\",\"traceState\":\"a=b\",\"attributes\":"
    "[{\"key\":\"l\",\"value\":{\"stringValue\":\"v\"}}],\"droppedAttributesCount\":7,"
    "\"flags\":256}],\"droppedLinksCount\":8,\"status\":{\"message\":\"boom\",\"code\":2},"
    "\"flags\":1}],\"schemaUrl\":\"https://scope\"}],\"schemaUrl\":\"https://res\"}]}";

static const char full_snake[] =
    "{\"resource_spans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
    "\"value\":{\"string_value\":\"svc\"}}],\"dropped_attributes_count\":2},"
    "\"scope_spans\":[{\"scope\":{\"name\":\"lib\",\"version\":\"1.2\",\"attributes\":"
    "[{\"key\":\"s\",\"value\":{\"bool_value\":true}}],\"dropped_attributes_count\":3},"
    "\"spans\":[{\"trace_id\":\"5b8efff798038103d269b633813fc60c\","
    "\"span_id\":\"eee19b7ec3c1b174\",\"trace_state\":\"ot=th:c\","
    "\"parent_span_id\":\"eee19b7ec3c1b173\",\"name\":\"GET /\",\"kind\":\"SPAN_KIND_SERVER\","
    "\"start_time_unix_nano\":100,\"end_time_unix_nano\":\"200\","
    "\"attributes\":[{\"key\":\"i\",\"value\":{\"int_value\":5}},"
    "{\"key\":\"d\",\"value\":{\"double_value\":1.5}},"
    "{\"key\":\"arr\",\"value\":{\"array_value\":{\"values\":[{\"string_value\":\"x\"}]}}},"
    "{\"key\":\"kv\",\"value\":{\"kvlist_value\":{\"values\":[{\"key\":\"k\","
    "\"value\":{\"bytes_value\":\"AAE\"}}]}}}],"
    "\"dropped_attributes_count\":4,\"events\":[{\"time_unix_nano\":\"150\",\"name\":\"ev\","
    "\"attributes\":[{\"key\":\"e\",\"value\":{\"int_value\":\"1\"}}],"
    "\"dropped_attributes_count\":5}],\"dropped_events_count\":6,"
    "\"links\":[{\"trace_id\":\"5B8EFFF798038103D269B633813FC60D\","
    "\"span_id\":\"eee19b7ec3c1b175\",\"trace_state\":\"a=b\",\"attributes\":"
    "[{\"key\":\"l\",\"value\":{\"string_value\":\"v\"}}],\"dropped_attributes_count\":7,"
    "\"flags\":256}],\"dropped_links_count\":8,\"status\":{\"message\":\"boom\","
    "\"code\":\"STATUS_CODE_ERROR\"},"
    "\"flags\":1}],\"schema_url\":\"https://scope\"}],\"schema_url\":\"https://res\"}]}";

static void test_every_field_decoded(void **state)
{
    Request *req = decode(full_camel);
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[0];
    assert_string_equal(rs->schema_url, "https://res");
    assert_non_null(rs->resource);
    assert_int_equal(rs->resource->n_attributes, 1);
    assert_string_equal(rs->resource->attributes[0]->key, "service.name");
    assert_string_equal(rs->resource->attributes[0]->value->string_value, "svc");
    assert_int_equal(rs->resource->dropped_attributes_count, 2);
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[0];
    assert_string_equal(ss->schema_url, "https://scope");
    assert_string_equal(ss->scope->name, "lib");
    assert_string_equal(ss->scope->version, "1.2");
    assert_int_equal(ss->scope->attributes[0]->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    assert_true(ss->scope->attributes[0]->value->bool_value);
    assert_int_equal(ss->scope->dropped_attributes_count, 3);
    Span *s = ss->spans[0];
    assert_int_equal(s->trace_id.data[15], 0x0c);
    assert_int_equal(s->span_id.data[7], 0x74);
    assert_string_equal(s->trace_state, "ot=th:c");
    assert_int_equal(s->parent_span_id.data[7], 0x73);
    assert_string_equal(s->name, "GET /");
    assert_int_equal(s->kind, 2);
    assert_true(s->start_time_unix_nano == 100);
    assert_true(s->end_time_unix_nano == 200);
    assert_int_equal(s->n_attributes, 4);
    assert_int_equal(s->dropped_attributes_count, 4);
    assert_int_equal(s->n_events, 1);
    assert_true(s->events[0]->time_unix_nano == 150);
    assert_string_equal(s->events[0]->name, "ev");
    assert_int_equal(s->events[0]->n_attributes, 1);
    assert_int_equal(s->events[0]->dropped_attributes_count, 5);
    assert_int_equal(s->dropped_events_count, 6);
    assert_int_equal(s->n_links, 1);
    assert_int_equal(s->links[0]->trace_id.data[15], 0x0d);
    assert_int_equal(s->links[0]->span_id.data[7], 0x75);
    assert_string_equal(s->links[0]->trace_state, "a=b");
    assert_string_equal(s->links[0]->attributes[0]->value->string_value, "v");
    assert_int_equal(s->links[0]->dropped_attributes_count, 7);
    assert_int_equal(s->links[0]->flags, 256);
    assert_int_equal(s->dropped_links_count, 8);
    assert_string_equal(s->status->message, "boom");
    assert_int_equal(s->status->code, 2);
    assert_int_equal(s->flags, 1);
    free_req(req);

    /* And every one of them comes back out under its lowerCamelCase key. */
    json_t *root = json_round(full_camel);
    json_t *jrs = json_array_get(json_object_get(root, "resourceSpans"), 0);
    assert_string_equal(json_string_value(json_object_get(jrs, "schemaUrl")), "https://res");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(jrs, "resource"),
                                                        "droppedAttributesCount")),
                     2);
    json_t *jss = json_array_get(json_object_get(jrs, "scopeSpans"), 0);
    assert_string_equal(json_string_value(json_object_get(jss, "schemaUrl")), "https://scope");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(jss, "scope"), "version")), "1.2");
    json_t *js = first_span_json(root);
    static const char *const span_keys[] = {
        "traceId",
        "spanId",
        "traceState",
        "parentSpanId",
        "name",
        "kind",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "attributes",
        "droppedAttributesCount",
        "events",
        "droppedEventsCount",
        "links",
        "droppedLinksCount",
        "status",
        "flags",
    };
    for (size_t i = 0; i < 16; i++) {
        if (json_object_get(js, span_keys[i]) == NULL) {
            print_error("missing span key %s\n", span_keys[i]);
        }
        assert_non_null(json_object_get(js, span_keys[i]));
    }
    assert_int_equal(json_object_size(js), 16);
    json_t *link = json_array_get(json_object_get(js, "links"), 0);
    assert_string_equal(json_string_value(json_object_get(link, "traceState")), "a=b");
    json_t *ev = json_array_get(json_object_get(js, "events"), 0);
    assert_int_equal(json_integer_value(json_object_get(ev, "droppedAttributesCount")), 5);
    json_decref(root);
}

static void test_snake_case_keys_accepted(void **state)
{
    assert_same_pb(full_camel, full_snake);
}

static void test_unknown_fields_ignored_at_every_level(void **state)
{
    const char *noisy =
        "{\"x\":1,\"resourceSpans\":[{\"junk\":[1,{\"a\":[]}],\"resource\":{\"zz\":null,"
        "\"attributes\":[{\"key\":\"service.name\",\"extra\":{},\"value\":{\"stringValue\":\"svc\","
        "\"mystery\":\"m\"}}],\"droppedAttributesCount\":2,\"entityRefs\":[{\"type\":\"t\"}]},"
        "\"scopeSpans\":[{\"scope\":{\"name\":\"lib\",\"version\":\"1.2\",\"attributes\":"
        "[{\"key\":\"s\",\"value\":{\"boolValue\":true}}],\"droppedAttributesCount\":3,\"q\":0},"
        "\"spans\":[{\"unknownSpanField\":\"zzz\",\"traceId\":\"5b8efff798038103d269b633813fc60c\","
        "\"spanId\":\"eee19b7ec3c1b174\",\"traceState\":\"ot=th:c\","
        "\"parentSpanId\":\"eee19b7ec3c1b173\",\"name\":\"GET /\",\"kind\":2,"
        "\"startTimeUnixNano\":\"100\",\"endTimeUnixNano\":\"200\","
        "\"attributes\":[{\"key\":\"i\",\"value\":{\"intValue\":\"5\"}},"
        "{\"key\":\"d\",\"value\":{\"doubleValue\":1.5}},"
        "{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"u\":1,\"values\":[{\"stringValue\":\"x\"}]}}"
        "},"
        "{\"key\":\"kv\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"k\","
        "\"value\":{\"bytesValue\":\"AAE=\"}}],\"u\":[]}}}],"
        "\"droppedAttributesCount\":4,\"events\":[{\"timeUnixNano\":\"150\",\"name\":\"ev\","
        "\"attributes\":[{\"key\":\"e\",\"value\":{\"intValue\":\"1\"}}],\"w\":true,"
        "\"droppedAttributesCount\":5}],\"droppedEventsCount\":6,"
        "\"links\":[{\"traceId\":\"5b8efff798038103d269b633813fc60d\",\"w\":false,"
        "\"spanId\":\"eee19b7ec3c1b175\",\"traceState\":\"a=b\",\"attributes\":"
        "[{\"key\":\"l\",\"value\":{\"stringValue\":\"v\"}}],\"droppedAttributesCount\":7,"
        "\"flags\":256}],\"droppedLinksCount\":8,\"status\":{\"message\":\"boom\",\"code\":2,"
        "\"deprecatedCode\":3},\"flags\":1}],\"schemaUrl\":\"https://scope\"}],"
        "\"schemaUrl\":\"https://res\"}],\"tail\":{\"deep\":{\"er\":[[[]]]}}}";
    assert_same_pb(full_camel, noisy);
}

static void test_null_values_are_absent(void **state)
{
    const char *with_nulls =
        "{\"resourceSpans\":[{\"resource\":null,\"scopeSpans\":[{\"scope\":null,\"schemaUrl\":null,"
        "\"spans\":[{\"traceId\":null,\"spanId\":null,\"traceState\":null,\"parentSpanId\":null,"
        "\"name\":\"n\",\"kind\":null,\"startTimeUnixNano\":null,\"endTimeUnixNano\":null,"
        "\"attributes\":[{\"key\":\"k\",\"value\":null}],\"droppedAttributesCount\":null,"
        "\"events\":null,\"droppedEventsCount\":null,\"links\":null,\"droppedLinksCount\":null,"
        "\"status\":null,\"flags\":null}]}],\"schemaUrl\":null}]}";
    const char *without = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"n\","
                          "\"attributes\":[{\"key\":\"k\"}]}]}]}]}";
    assert_same_pb(with_nulls, without);
    Request *req = decode(with_nulls);
    Span *s = only_span(req);
    assert_null(req->resource_spans[0]->resource);
    assert_null(s->status);
    assert_null(s->attributes[0]->value);
    free_req(req);
    /* A null request field and a null top-level list: an empty request (zero bytes). */
    rt_buf pb;
    to_pb_ok("{\"resourceSpans\":null}", &pb);
    assert_int_equal(pb.len, 0);
    rt_buf_free(&pb);
}

/* ----- AnyValue ---------------------------------------------------------------------------- */

static void test_every_anyvalue_kind(void **state)
{
    char *json = with_span(
        "{\"attributes\":["
        "{\"key\":\"s\",\"value\":{\"stringValue\":\"h\\u00e9\\\"\\n\\u0001\"}},"
        "{\"key\":\"se\",\"value\":{\"stringValue\":\"\"}},"
        "{\"key\":\"b\",\"value\":{\"boolValue\":false}},"
        "{\"key\":\"i\",\"value\":{\"intValue\":\"0\"}},"
        "{\"key\":\"d\",\"value\":{\"doubleValue\":-2.5e-3}},"
        "{\"key\":\"a\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":1},"
        "{\"arrayValue\":{\"values\":[{\"stringValue\":\"deep\"},{}]}},{\"arrayValue\":{}}]}}},"
        "{\"key\":\"kv\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"x\",\"value\":"
        "{\"kvlistValue\":{\"values\":[{\"key\":\"y\",\"value\":{\"boolValue\":true}}]}}},"
        "{\"key\":\"novalue\"}]}}},"
        "{\"key\":\"by\",\"value\":{\"bytesValue\":\"3q2+7w==\"}},"
        "{\"key\":\"empty\",\"value\":{}}]}");
    Request *req = decode(json);
    Span *s = only_span(req);
    assert_int_equal(s->n_attributes, 9);
    AnyValue *v = attr_value(s, 0);
    assert_int_equal(v->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    assert_string_equal(v->string_value, "h\xc3\xa9\"\n\x01");
    v = attr_value(s, 1);
    assert_int_equal(v->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    assert_string_equal(v->string_value, "");
    v = attr_value(s, 2);
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    assert_false(v->bool_value);
    v = attr_value(s, 3);
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    assert_true(v->int_value == 0);
    v = attr_value(s, 4);
    assert_int_equal(v->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
    assert_true(v->double_value == -2.5e-3);
    v = attr_value(s, 5);
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
    assert_int_equal(v->array_value->n_values, 3);
    assert_true(v->array_value->values[0]->int_value == 1);
    AnyValue *inner = v->array_value->values[1];
    assert_int_equal(inner->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
    assert_string_equal(inner->array_value->values[0]->string_value, "deep");
    assert_int_equal(inner->array_value->values[1]->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
    assert_int_equal(v->array_value->values[2]->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
    assert_int_equal(v->array_value->values[2]->array_value->n_values, 0);
    v = attr_value(s, 6);
    assert_int_equal(v->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE);
    assert_int_equal(v->kvlist_value->n_values, 2);
    KeyValue *x = v->kvlist_value->values[0];
    assert_string_equal(x->key, "x");
    assert_string_equal(x->value->kvlist_value->values[0]->key, "y");
    assert_true(x->value->kvlist_value->values[0]->value->bool_value);
    assert_null(v->kvlist_value->values[1]->value);
    v = attr_value(s, 7);
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
    assert_int_equal(v->bytes_value.len, 4);
    assert_memory_equal(v->bytes_value.data, "\xde\xad\xbe\xef", 4);
    v = attr_value(s, 8);
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
    free_req(req);

    /* Output keeps every kind, including oneof members holding default values. */
    json_t *root = json_round(json);
    json_t *attrs = json_object_get(first_span_json(root), "attributes");
    assert_int_equal(json_array_size(attrs), 9);
#define VAL(i) json_object_get(json_array_get(attrs, i), "value")
    assert_string_equal(json_string_value(json_object_get(VAL(0), "stringValue")),
                        "h\xc3\xa9\"\n\x01");
    assert_string_equal(json_string_value(json_object_get(VAL(1), "stringValue")), "");
    assert_true(json_is_false(json_object_get(VAL(2), "boolValue")));
    assert_string_equal(json_string_value(json_object_get(VAL(3), "intValue")), "0");
    assert_true(json_real_value(json_object_get(VAL(4), "doubleValue")) == -2.5e-3);
    json_t *arr = json_object_get(json_object_get(VAL(5), "arrayValue"), "values");
    assert_int_equal(json_array_size(arr), 3);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(
                json_object_get(json_object_get(json_array_get(arr, 1), "arrayValue"), "values"),
                0),
            "stringValue")),
        "deep");
    assert_true(json_is_object(json_object_get(json_array_get(arr, 2), "arrayValue")));
    json_t *kvs = json_object_get(json_object_get(VAL(6), "kvlistValue"), "values");
    assert_string_equal(json_string_value(json_object_get(json_array_get(kvs, 0), "key")), "x");
    assert_string_equal(json_string_value(json_object_get(VAL(7), "bytesValue")), "3q2+7w==");
    assert_int_equal(json_object_size(VAL(8)), 0);
#undef VAL
    json_decref(root);
    free(json);
}

static void test_anyvalue_errors(void **state)
{
    static const struct {
        const char *span;
        const char *want;
    } cases[] = {
        {"{\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":\"a\",\"intValue\":\"1\"}}]}",
         "spans[0].attributes[0].value.intValue: AnyValue already has stringValue"},
        {"{\"attributes\":[{\"key\":\"k\",\"value\":{\"boolValue\":\"true\"}}]}",
         "attributes[0].value.boolValue: expected true or false, got a string"},
        {"{\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":5}}]}",
         "attributes[0].value.stringValue: expected a string, got a number"},
        {"{\"attributes\":[{\"value\":{\"arrayValue\":{\"values\":[{},{\"intValue\":\"z\"}]}}}]}",
         "attributes[0].value.arrayValue.values[1].intValue: expected a decimal"},
        {"{\"attributes\":[{\"value\":{\"kvlistValue\":{\"values\":[{\"key\":1}]}}}]}",
         "attributes[0].value.kvlistValue.values[0].key: expected a string, got a number"},
        {"{\"attributes\":[{\"value\":{\"arrayValue\":[]}}]}",
         "attributes[0].value.arrayValue: expected an object, got an array"},
        {"{\"attributes\":[{\"value\":{\"bytesValue\":\"AB$=\"}}]}",
         "attributes[0].value.bytesValue: not valid base64"},
        {"{\"attributes\":[{\"value\":{\"bytesValue\":\"A\"}}]}",
         "attributes[0].value.bytesValue: not valid base64"},
        {"{\"attributes\":[{\"value\":{\"bytesValue\":\"AA=A\"}}]}",
         "attributes[0].value.bytesValue: not valid base64"},
        {"{\"attributes\":[{\"value\":{\"doubleValue\":\"nan\"}}]}",
         "attributes[0].value.doubleValue: expected a number, \"NaN\""},
        {"{\"attributes\":[{\"value\":{\"doubleValue\":\"0x1p3\"}}]}",
         "attributes[0].value.doubleValue: expected a number"},
        {"{\"attributes\":[{\"value\":{\"doubleValue\":[]}}]}",
         "attributes[0].value.doubleValue: expected a number, got an array"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *j = with_span(cases[i].span);
        expect_error(j, cases[i].want);
        free(j);
    }
}

static void test_doubles_nan_infinity_both_ways(void **state)
{
    char *json = with_span("{\"attributes\":["
                           "{\"key\":\"n\",\"value\":{\"doubleValue\":\"NaN\"}},"
                           "{\"key\":\"p\",\"value\":{\"doubleValue\":\"Infinity\"}},"
                           "{\"key\":\"m\",\"value\":{\"doubleValue\":\"-Infinity\"}},"
                           "{\"key\":\"z\",\"value\":{\"doubleValue\":-0.0}},"
                           "{\"key\":\"t\",\"value\":{\"doubleValue\":0.1}},"
                           "{\"key\":\"q\",\"value\":{\"doubleValue\":\"2.5\"}},"
                           "{\"key\":\"i\",\"value\":{\"doubleValue\":3}},"
                           "{\"key\":\"e\",\"value\":{\"doubleValue\":1.7976931348623157e308}}]}");
    Request *req = decode(json);
    Span *s = only_span(req);
    assert_true(isnan(attr_value(s, 0)->double_value));
    assert_true(isinf(attr_value(s, 1)->double_value) && attr_value(s, 1)->double_value > 0);
    assert_true(isinf(attr_value(s, 2)->double_value) && attr_value(s, 2)->double_value < 0);
    assert_true(attr_value(s, 3)->double_value == 0 && signbit(attr_value(s, 3)->double_value));
    assert_true(attr_value(s, 4)->double_value == 0.1);
    assert_true(attr_value(s, 5)->double_value == 2.5);
    assert_true(attr_value(s, 6)->double_value == 3.0);
    assert_int_equal(attr_value(s, 6)->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
    free_req(req);

    json_t *root = json_round(json);
    json_t *attrs = json_object_get(first_span_json(root), "attributes");
#define DV(i) json_object_get(json_object_get(json_array_get(attrs, i), "value"), "doubleValue")
    assert_string_equal(json_string_value(DV(0)), "NaN");
    assert_string_equal(json_string_value(DV(1)), "Infinity");
    assert_string_equal(json_string_value(DV(2)), "-Infinity");
    assert_true(json_is_real(DV(3)) && signbit(json_real_value(DV(3))));
    assert_true(json_is_real(DV(4)) && json_real_value(DV(4)) == 0.1);
    assert_true(json_is_real(DV(6)) && json_real_value(DV(6)) == 3.0);
    assert_true(json_real_value(DV(7)) == 1.7976931348623157e308);
#undef DV
    json_decref(root);
    free(json);
}

/* ----- bytes ------------------------------------------------------------------------------- */

/* Build a request with a single bytesValue attribute through protobuf-c, render it as JSON and
 * return the base64 text (caller frees). */
static char *bytes_to_base64_via_json(const uint8_t *data, size_t len)
{
    AnyValue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    av.bytes_value.data = (uint8_t *)data;
    av.bytes_value.len = len;
    KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    kv.key = "b";
    kv.value = &av;
    KeyValue *kvp = &kv;
    Opentelemetry__Proto__Resource__V1__Resource res =
        OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    res.n_attributes = 1;
    res.attributes = &kvp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.resource = &res;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
    Request req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    size_t n;
    uint8_t *pb = rt_gen_pack(&req, &n);
    json_t *root = pb_to_json_tree(pb, n);
    free(pb);
    json_t *rj =
        json_object_get(json_array_get(json_object_get(root, "resourceSpans"), 0), "resource");
    json_t *v = json_object_get(json_array_get(json_object_get(rj, "attributes"), 0), "value");
    const char *b64 = json_string_value(json_object_get(v, "bytesValue"));
    assert_non_null(b64);
    char *copy = rt_strdup(b64);
    json_decref(root);
    return copy;
}

/* Decode a bytesValue given as base64 through the JSON path; returns the bytes in *out. */
static void base64_to_bytes_via_json(const char *b64, rt_buf *out)
{
    char *json = rt_sprintf("{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"b\","
                            "\"value\":{\"bytesValue\":\"%s\"}}]}}]}",
                            b64);
    Request *req = decode(json);
    AnyValue *v = req->resource_spans[0]->resource->attributes[0]->value;
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
    rt_buf_init(out);
    rt_buf_append(out, v->bytes_value.data, v->bytes_value.len);
    free_req(req);
    free(json);
}

static void test_bytes_base64_both_ways(void **state)
{
    /* RFC 4648 section 10 vectors. */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *b64 = bytes_to_base64_via_json((const uint8_t *)plain[i], strlen(plain[i]));
        assert_string_equal(b64, enc[i]);
        free(b64);
        rt_buf back;
        base64_to_bytes_via_json(enc[i], &back);
        assert_int_equal(back.len, strlen(plain[i]));
        if (back.len > 0) {
            assert_memory_equal(back.data, plain[i], back.len);
        }
        rt_buf_free(&back);
    }
    /* Every byte value and every length 0..70 survives bytes -> base64 -> bytes. */
    uint8_t data[70];
    for (size_t len = 0; len <= sizeof(data); len++) {
        for (size_t i = 0; i < len; i++) {
            data[i] = (uint8_t)(len * 37 + i * 101 + 0xf0);
        }
        char *b64 = bytes_to_base64_via_json(data, len);
        assert_int_equal(strlen(b64), (len + 2) / 3 * 4);
        rt_buf back;
        base64_to_bytes_via_json(b64, &back);
        assert_int_equal(back.len, len);
        if (len > 0) {
            assert_memory_equal(back.data, data, len);
        }
        rt_buf_free(&back);
        free(b64);
    }
    /* URL-safe alphabet and missing padding are accepted on input. */
    rt_buf a;
    rt_buf b;
    base64_to_bytes_via_json("-_-_", &a);
    base64_to_bytes_via_json("+/+/", &b);
    assert_int_equal(a.len, 3);
    assert_int_equal(b.len, 3);
    assert_memory_equal(a.data, b.data, 3);
    assert_memory_equal(a.data, "\xfb\xff\xbf", 3);
    rt_buf_free(&a);
    rt_buf_free(&b);
    base64_to_bytes_via_json("Zm9vYg", &a);
    assert_int_equal(a.len, 4);
    assert_memory_equal(a.data, "foob", 4);
    rt_buf_free(&a);
}

/* ----- malformed text, wrong types, depth ---------------------------------------------------- */

static void test_malformed_json_reports_jansson_line_and_column(void **state)
{
    static const char *const bad[] = {
        "{\n  \"resourceSpans\": [\n    {\"scopeSpans\": [}\n  ]\n}",
        "{\"resourceSpans\": [] } trailing",
        "{\"a\": \"unterminated",
        "",
        "\"just a string\"",
        "{\"a\":\"\\u0000\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_error_t jerr;
        json_t *j = json_loadb(bad[i], strlen(bad[i]), 0, &jerr);
        assert_null(j);
        char want[128];
        snprintf(want, sizeof(want), "invalid JSON at line %d column %d: ", jerr.line, jerr.column);
        expect_error(bad[i], want);
        expect_error(bad[i], jerr.text);
    }
    /* The first document breaks on its third line. */
    expect_error(bad[0], "line 3");
}

static void test_wrong_types_report_path(void **state)
{
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"[]", "request: expected a JSON object, got an array"},
        {"{\"resourceSpans\":\"x\"}", "resourceSpans: expected an array, got a string"},
        {"{\"resourceSpans\":{}}", "resourceSpans: expected an array, got an object"},
        {"{\"resourceSpans\":[{},\"x\"]}", "resourceSpans[1]: expected an object, got a string"},
        {"{\"resource_spans\":[null]}", "resource_spans[0]: expected an object, got null"},
        {"{\"resourceSpans\":[{\"resource\":\"r\"}]}",
         "resourceSpans[0].resource: expected an object, got a string"},
        {"{\"resourceSpans\":[{\"resource\":{\"attributes\":{}}}]}",
         "resourceSpans[0].resource.attributes: expected an array, got an object"},
        {"{\"resourceSpans\":[{\"schemaUrl\":1}]}",
         "resourceSpans[0].schemaUrl: expected a string, got a number"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"scope\":[]}]}]}",
         "resourceSpans[0].scopeSpans[0].scope: expected an object, got an array"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"scope\":{\"version\":false}}]}]}",
         "resourceSpans[0].scopeSpans[0].scope.version: expected a string, got a boolean"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{},{\"name\":[]}]}]}]}",
         "resourceSpans[0].scopeSpans[0].spans[1].name: expected a string, got an array"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"status\":\"ok\"}]}]}]}",
         "spans[0].status: expected an object, got a string"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"status\":{\"message\":{}}}]}]}]}",
         "spans[0].status.message: expected a string, got an object"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"events\":[{\"name\":1}]}]}]}]}",
         "spans[0].events[0].name: expected a string"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"links\":[{\"trace_state\":1}]}]}]}]}",
         "spans[0].links[0].trace_state: expected a string"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"value\":\"v\"}]}]}]}"
         "]}",
         "spans[0].attributes[0].value: expected an object, got a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_error(cases[i].json, cases[i].want);
    }
}

/* "{"x":" + n '[' + n ']' + "}": n + 1 levels of nesting. */
static char *nested_json(int levels)
{
    rt_buf b = RT_BUF_INIT;
    rt_buf_append_str(&b, "{\"x\":");
    for (int i = 0; i < levels - 1; i++) {
        rt_buf_append_byte(&b, '[');
    }
    for (int i = 0; i < levels - 1; i++) {
        rt_buf_append_byte(&b, ']');
    }
    rt_buf_append_str(&b, "}");
    rt_buf_append_byte(&b, '\0');
    return (char *)rt_buf_steal(&b, NULL);
}

/* A request whose first resource attribute holds `levels` nested arrayValues (JSON text). */
static char *nested_anyvalue_json(int levels)
{
    rt_buf b = RT_BUF_INIT;
    rt_buf_append_str(&b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"k\","
                          "\"value\":");
    for (int i = 0; i < levels; i++) {
        rt_buf_append_str(&b, "{\"arrayValue\":{\"values\":[");
    }
    rt_buf_append_str(&b, "{\"stringValue\":\"[{\\\"\"}");
    for (int i = 0; i < levels; i++) {
        rt_buf_append_str(&b, "]}}");
    }
    rt_buf_append_str(&b, "}]}}]}");
    rt_buf_append_byte(&b, '\0');
    return (char *)rt_buf_steal(&b, NULL);
}

static void test_depth_limit_on_input(void **state)
{
    char *ok = nested_json(RT_OTLP_JSON_MAX_DEPTH);
    rt_buf pb;
    to_pb_ok(ok, &pb); /* exactly at the limit: accepted (and ignored: unknown field) */
    assert_int_equal(pb.len, 0);
    rt_buf_free(&pb);
    free(ok);
    char *deep = nested_json(RT_OTLP_JSON_MAX_DEPTH + 1);
    expect_error(deep, "nested deeper than 64 levels");
    expect_error(deep, "line 1 column 69"); /* the 65th container: {"x": then 64 '[' */
    free(deep);
    /* Very deep (beyond jansson's own limit) is refused the same way, without recursion. */
    char *huge = nested_json(100000);
    expect_error(huge, "nested deeper than 64 levels");
    free(huge);
    /* Nested AnyValues: 6 levels for the envelope, 3 per arrayValue, 1 for the leaf value.
     * Brackets inside the leaf string do not count. */
    int fits = (RT_OTLP_JSON_MAX_DEPTH - 7) / 3;
    char *j = nested_anyvalue_json(fits);
    Request *req = decode(j);
    AnyValue *v = req->resource_spans[0]->resource->attributes[0]->value;
    for (int i = 0; i < fits; i++) {
        assert_int_equal(v->value_case,
                         OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
        v = v->array_value->values[0];
    }
    assert_string_equal(v->string_value, "[{\"");
    free_req(req);
    free(j);
    j = nested_anyvalue_json(fits + 1);
    expect_error(j, "nested deeper than 64 levels");
    free(j);
}

/* Pack a request whose resource attribute holds `levels` nested arrayValues. */
static uint8_t *nested_anyvalue_pb(int levels, size_t *len)
{
    AnyValue *vals = rt_calloc((size_t)levels + 1, sizeof(AnyValue));
    Opentelemetry__Proto__Common__V1__ArrayValue *arrs = rt_calloc((size_t)levels, sizeof(*arrs));
    AnyValue **ptrs = rt_calloc((size_t)levels, sizeof(*ptrs));
    for (int i = 0; i <= levels; i++) {
        opentelemetry__proto__common__v1__any_value__init(&vals[i]);
    }
    for (int i = 0; i < levels; i++) {
        opentelemetry__proto__common__v1__array_value__init(&arrs[i]);
        vals[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        vals[i].array_value = &arrs[i];
        ptrs[i] = &vals[i + 1];
        arrs[i].n_values = 1;
        arrs[i].values = &ptrs[i];
    }
    vals[levels].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    vals[levels].bool_value = 1;
    KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    kv.key = "k";
    kv.value = &vals[0];
    KeyValue *kvp = &kv;
    Opentelemetry__Proto__Resource__V1__Resource res =
        OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    res.n_attributes = 1;
    res.attributes = &kvp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.resource = &res;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
    Request req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    uint8_t *pb = rt_gen_pack(&req, len);
    free(vals);
    free(arrs);
    free(ptrs);
    return pb;
}

static void test_depth_limit_on_output(void **state)
{
    char err[512] = "";
    rt_buf out = RT_BUF_INIT;
    size_t len;
    /* What fits on input fits on output, and comes back identical. */
    int fits = (RT_OTLP_JSON_MAX_DEPTH - 7) / 3;
    uint8_t *pb = nested_anyvalue_pb(fits, &len);
    assert_int_equal(rt_otlp_pb_to_json(pb, len, &out, err, sizeof(err)), 0);
    rt_buf_append_byte(&out, '\0');
    rt_buf back = RT_BUF_INIT;
    to_pb_ok((const char *)out.data, &back);
    assert_int_equal(back.len, len);
    assert_memory_equal(back.data, pb, len);
    rt_buf_free(&back);
    rt_buf_free(&out);
    free(pb);
    /* One more level is refused with the path of the value that went too deep. */
    pb = nested_anyvalue_pb(fits + 1, &len);
    rt_buf_append_str(&out, "prefix");
    assert_int_equal(rt_otlp_pb_to_json(pb, len, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "resourceSpans[0].resource.attributes[0].value.arrayValue."
                                "values[0].arrayValue.values[0]"));
    assert_non_null(strstr(err, "nested deeper than 64 JSON levels"));
    assert_int_equal(out.len, 6); /* nothing half-written is left behind */
    free(pb);
    /* Message nesting far past the limit is refused before protobuf-c unpacks it. */
    pb = nested_anyvalue_pb(5000, &len);
    assert_int_equal(rt_otlp_pb_to_json(pb, len, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "protobuf messages nested deeper than 64 levels"));
    assert_int_equal(out.len, 6);
    free(pb);
    rt_buf_free(&out);
}

/* ----- pb -> JSON specifics ---------------------------------------------------------------- */

static void test_pb_to_json_rejects_bad_input(void **state)
{
    char err[256] = "";
    rt_buf out = RT_BUF_INIT;
    /* Field 1, length 200, but only 3 bytes follow. */
    static const uint8_t trunc[] = {0x0a, 0xc8, 0x01, 0x01, 0x02, 0x03};
    assert_int_equal(rt_otlp_pb_to_json(trunc, sizeof(trunc), &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a valid protobuf ExportTraceServiceRequest"));
    assert_int_equal(out.len, 0);

    /* A span whose trace id is 5 bytes would produce JSON we refuse, so it is refused here. */
    uint8_t bad_id[5] = {1, 2, 3, 4, 5};
    Span span = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    span.trace_id.data = bad_id;
    span.trace_id.len = 5;
    Span *spanp = &span;
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
        OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = 1;
    ss.spans = &spanp;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
    Request req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    size_t len;
    uint8_t *pb = rt_gen_pack(&req, &len);
    assert_int_equal(rt_otlp_pb_to_json(pb, len, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 16 "
                                "bytes, got 5"));
    free(pb);

    /* Invalid UTF-8 in a string cannot be written as JSON. */
    span.trace_id.len = 0;
    span.name = "ok\xff";
    pb = rt_gen_pack(&req, &len);
    assert_int_equal(rt_otlp_pb_to_json(pb, len, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "spans[0].name: string is not valid UTF-8"));
    free(pb);
    span.name = "\xed\xa0\x80"; /* an encoded surrogate: jansson would refuse it too */
    pb = rt_gen_pack(&req, &len);
    assert_int_equal(rt_otlp_pb_to_json(pb, len, &out, err, sizeof(err)), -1);
    free(pb);
    assert_int_equal(out.len, 0);

    /* Well-formed: an empty request is {} and output is appended after existing content. */
    rt_buf_append_str(&out, "X");
    assert_int_equal(rt_otlp_pb_to_json((const uint8_t *)"", 0, &out, err, sizeof(err)), 0);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "X{}", 3);
    rt_buf_free(&out);
}

static void test_output_is_one_line_with_escapes(void **state)
{
    char *json = with_span("{\"name\":\"a\\nb\\t\\\"c\\\\ \\u001f \\u2028 \\ud83d\\ude00\","
                           "\"attributes\":[{\"key\":\"k\\r\"}]}");
    rt_buf pb;
    to_pb_ok(json, &pb);
    char err[256];
    rt_buf out = RT_BUF_INIT;
    assert_int_equal(rt_otlp_pb_to_json(pb.data, pb.len, &out, err, sizeof(err)), 0);
    assert_null(memchr(out.data, '\n', out.len));
    assert_null(memchr(out.data, '\r', out.len));
    assert_null(memchr(out.data, '\t', out.len));
    rt_buf_append_byte(&out, '\0');
    json_t *root = json_loads((const char *)out.data, 0, NULL);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(first_span_json(root), "name")),
                        "a\nb\t\"c\\ \x1f \xe2\x80\xa8 \xf0\x9f\x98\x80");
    json_decref(root);
    rt_buf_free(&out);
    rt_buf_free(&pb);
    free(json);
}

/* ----- responses --------------------------------------------------------------------------- */

static void test_response_json(void **state)
{
    rt_buf out = RT_BUF_INIT;
    rt_otlp_json_response(0, NULL, &out);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "{}", 2);
    rt_buf_reset(&out);
    rt_otlp_json_response(0, "", &out);
    assert_memory_equal(out.data, "{}", 2);

    rt_buf_reset(&out);
    rt_otlp_json_response(9000000000LL, "bad \"span\"\n\xff", &out);
    json_t *root = json_loadb((const char *)out.data, out.len, 0, NULL);
    assert_non_null(root);
    json_t *ps = json_object_get(root, "partialSuccess");
    assert_string_equal(json_string_value(json_object_get(ps, "rejectedSpans")), "9000000000");
    /* Invalid UTF-8 in a message becomes U+FFFD rather than invalid JSON. */
    assert_string_equal(json_string_value(json_object_get(ps, "errorMessage")),
                        "bad \"span\"\n\xef\xbf\xbd");
    json_decref(root);

    rt_buf_reset(&out);
    rt_otlp_json_response(3, NULL, &out);
    root = json_loadb((const char *)out.data, out.len, 0, NULL);
    ps = json_object_get(root, "partialSuccess");
    assert_string_equal(json_string_value(json_object_get(ps, "rejectedSpans")), "3");
    assert_null(json_object_get(ps, "errorMessage"));
    json_decref(root);

    rt_buf_reset(&out);
    rt_otlp_json_response(0, "warn", &out);
    root = json_loadb((const char *)out.data, out.len, 0, NULL);
    ps = json_object_get(root, "partialSuccess");
    assert_null(json_object_get(ps, "rejectedSpans"));
    assert_string_equal(json_string_value(json_object_get(ps, "errorMessage")), "warn");
    json_decref(root);
    rt_buf_free(&out);
}

static void test_status_json(void **state)
{
    rt_buf out = RT_BUF_INIT;
    rt_otlp_json_status(3, "resourceSpans[0]: expected \"x\"\\", &out);
    json_t *root = json_loadb((const char *)out.data, out.len, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "code")), 3);
    assert_string_equal(json_string_value(json_object_get(root, "message")),
                        "resourceSpans[0]: expected \"x\"\\");
    json_decref(root);
    rt_buf_reset(&out);
    rt_otlp_json_status(14, NULL, &out);
    root = json_loadb((const char *)out.data, out.len, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "code")), 14);
    assert_string_equal(json_string_value(json_object_get(root, "message")), "");
    json_decref(root);
    rt_buf_free(&out);
}

/* ----- round-trip property ----------------------------------------------------------------- */

#define ROUND_TRIPS 400

/* For generated requests: pb -> JSON -> pb equals the original as decoded and re-encoded by
 * protobuf-c, and rendering the result again gives the same JSON text. */
static void test_round_trip_random_requests(void **state)
{
    size_t total_spans = 0;
    for (uint64_t seed = 1; seed <= ROUND_TRIPS; seed++) {
        Request *gen = rt_gen_request(seed);
        assert_non_null(gen);
        size_t len;
        uint8_t *pb = rt_gen_pack(gen, &len);
        rt_gen_free(gen);

        /* The reference: what protobuf-c makes of the bytes. */
        Request *ref = (Request *)protobuf_c_message_unpack(REQ_DESC, NULL, len, pb);
        assert_non_null(ref);
        for (size_t i = 0; i < ref->n_resource_spans; i++) {
            for (size_t j = 0; j < ref->resource_spans[i]->n_scope_spans; j++) {
                total_spans += ref->resource_spans[i]->scope_spans[j]->n_spans;
            }
        }
        size_t ref_len;
        uint8_t *ref_pb = rt_gen_pack(ref, &ref_len);
        protobuf_c_message_free_unpacked(&ref->base, NULL);

        char err[512] = "";
        rt_buf json = RT_BUF_INIT;
        int rc = rt_otlp_pb_to_json(pb, len, &json, err, sizeof(err));
        if (rc != 0) {
            print_error("seed %llu: pb_to_json: %s\n", (unsigned long long)seed, err);
        }
        assert_int_equal(rc, 0);
        rt_buf back = RT_BUF_INIT;
        rc = rt_otlp_json_to_pb((const char *)json.data, json.len, &back, err, sizeof(err));
        if (rc != 0) {
            print_error("seed %llu: json_to_pb: %s\n", (unsigned long long)seed, err);
        }
        assert_int_equal(rc, 0);
        if (back.len != ref_len || (ref_len > 0 && memcmp(back.data, ref_pb, ref_len) != 0)) {
            print_error("seed %llu: round trip differs (%zu vs %zu bytes)\n",
                        (unsigned long long)seed, back.len, ref_len);
            fail();
        }
        rt_buf json2 = RT_BUF_INIT;
        assert_int_equal(rt_otlp_pb_to_json(back.data, back.len, &json2, err, sizeof(err)), 0);
        assert_int_equal(json2.len, json.len);
        assert_memory_equal(json2.data, json.data, json.len);

        rt_buf_free(&json2);
        rt_buf_free(&back);
        rt_buf_free(&json);
        free(ref_pb);
        free(pb);
    }
    /* Guard against a generator that produces nothing worth converting. */
    assert_true(total_spans > ROUND_TRIPS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_hex_case_insensitive_and_lowercase_out),
        cmocka_unit_test(test_ids_empty_means_absent),
        cmocka_unit_test(test_ids_base64_and_bad_lengths_rejected_with_path),
        cmocka_unit_test(test_int64_as_string_and_number),
        cmocka_unit_test(test_integers_reject_fractions_garbage_and_overflow),
        cmocka_unit_test(test_uint32_and_fixed32_fields_are_numbers),
        cmocka_unit_test(test_enums_names_and_numbers_in_integers_out),
        cmocka_unit_test(test_every_field_decoded),
        cmocka_unit_test(test_snake_case_keys_accepted),
        cmocka_unit_test(test_unknown_fields_ignored_at_every_level),
        cmocka_unit_test(test_null_values_are_absent),
        cmocka_unit_test(test_every_anyvalue_kind),
        cmocka_unit_test(test_anyvalue_errors),
        cmocka_unit_test(test_doubles_nan_infinity_both_ways),
        cmocka_unit_test(test_bytes_base64_both_ways),
        cmocka_unit_test(test_malformed_json_reports_jansson_line_and_column),
        cmocka_unit_test(test_wrong_types_report_path),
        cmocka_unit_test(test_depth_limit_on_input),
        cmocka_unit_test(test_depth_limit_on_output),
        cmocka_unit_test(test_pb_to_json_rejects_bad_input),
        cmocka_unit_test(test_output_is_one_line_with_escapes),
        cmocka_unit_test(test_response_json),
        cmocka_unit_test(test_status_json),
        cmocka_unit_test(test_round_trip_random_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
