/* otlp_ingest.c - transport-independent OTLP ingest: body decoding, status mapping and answer
 * encoding, plus the rt_otlp_call accessors (see otlp_ingest.h, otlp_server.h, otlp_call.h).
 */
#include "otlp_ingest.h"

#include "gzip.h"
#include "otlp_call.h"
#include "otlp_json.h"
#include "otlp_scan.h"

#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define INGEST_DEFAULT_MAX ((size_t)64 * 1024 * 1024)

/* gRPC status codes used by the mapping (google.rpc.Code). */
enum {
    GRPC_OK = 0,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
};

void rt_otlp_result_set(rt_otlp_result *res, rt_otlp_status status, const char *fmt, ...)
{
    memset(res, 0, sizeof *res);
    res->status = status;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res->message, sizeof res->message, fmt, ap);
        va_end(ap);
    }
}

/* Dispatch to the transport that created the call; the transport frees it. A NULL `res` is
 * answered as plain success so a careless caller cannot leak the call. */
void rt_otlp_call_respond(rt_otlp_call *call, const rt_otlp_result *res)
{
    rt_otlp_result ok;
    if (res == NULL) {
        rt_otlp_result_set(&ok, RT_OTLP_OK, NULL);
        res = &ok;
    }
    call->respond(call, res);
}

rt_otlp_transport rt_otlp_call_transport(const rt_otlp_call *call)
{
    return call->transport;
}

const char *rt_otlp_call_peer(const rt_otlp_call *call)
{
    return call->peer;
}

/* Decode pipeline: inflate (bounded by max_bytes), JSON -> protobuf, validate. Every failure is
 * reported with the stage as a prefix so the client can tell what to fix. */
int rt_otlp_ingest_decode(const uint8_t *body, size_t len, bool gzip, bool json, size_t max_bytes,
                          bool handler_checks, rt_buf *scratch, rt_buf *scratch2,
                          const uint8_t **pb, size_t *pb_len, size_t *span_count,
                          rt_otlp_result *err)
{
    char msg[sizeof err->message];
    const uint8_t *data = body;
    size_t dlen = len;
    if (max_bytes == 0) {
        max_bytes = INGEST_DEFAULT_MAX;
    }
    if (len > max_bytes) {
        rt_otlp_result_set(err, RT_OTLP_TOO_LARGE, "body of %zu bytes exceeds the limit of %zu",
                           len, max_bytes);
        return -1;
    }
    if (gzip) {
        rt_buf_reset(scratch);
        msg[0] = '\0';
        int rc = rt_gzip_inflate(body, len, max_bytes, scratch, msg, sizeof msg);
        if (rc == -2) {
            rt_otlp_result_set(err, RT_OTLP_TOO_LARGE, "%s", msg);
            return -1;
        }
        if (rc != 0) {
            /* gzip.c already prefixes its messages with "gzip: "; add it if one does not. */
            const char *pfx = strncmp(msg, "gzip:", 5) == 0 ? "" : "gzip: ";
            rt_otlp_result_set(err, RT_OTLP_BAD_DATA, "%s%s", pfx, msg[0] ? msg : "invalid data");
            return -1;
        }
        data = scratch->data;
        dlen = scratch->len;
    }
    if (json) {
        rt_buf_reset(scratch2);
        msg[0] = '\0';
        if (rt_otlp_json_to_pb((const char *)data, dlen, scratch2, msg, sizeof msg) != 0) {
            rt_otlp_result_set(err, RT_OTLP_BAD_DATA, "json: %s", msg[0] ? msg : "invalid");
            return -1;
        }
        data = scratch2->data;
        dlen = scratch2->len;
    }
    if (data == NULL) {
        /* An empty body: a valid request without spans. */
        static const uint8_t empty[1] = {0};
        data = empty;
        dlen = 0;
    }
    size_t spans = 0;
    msg[0] = '\0';
    /* handler_checks: the handler's own walk checks the structure (otlp_server.h). */
    int bad = handler_checks ? 0 : rt_otlp_validate(data, dlen, &spans, msg, sizeof msg);
    if (bad != 0) {
        rt_otlp_result_set(err, RT_OTLP_BAD_DATA, "protobuf: %s", msg[0] ? msg : "malformed");
        return -1;
    }
    *pb = data;
    *pb_len = dlen;
    *span_count = spans;
    return 0;
}

int rt_otlp_ingest_http_code(const rt_otlp_result *res)
{
    switch (res->status) {
    case RT_OTLP_OK:
        return 200;
    case RT_OTLP_BAD_DATA:
        return 400;
    case RT_OTLP_TOO_LARGE:
        return 413;
    case RT_OTLP_THROTTLED:
        return 429;
    case RT_OTLP_UNAVAILABLE:
        return 503;
    case RT_OTLP_INTERNAL:
        return 500;
    }
    return 500;
}

int rt_otlp_ingest_grpc_code(const rt_otlp_result *res)
{
    switch (res->status) {
    case RT_OTLP_OK:
        return GRPC_OK;
    case RT_OTLP_BAD_DATA:
        return GRPC_INVALID_ARGUMENT;
    case RT_OTLP_TOO_LARGE:
    case RT_OTLP_THROTTLED:
        return GRPC_RESOURCE_EXHAUSTED;
    case RT_OTLP_UNAVAILABLE:
        return GRPC_UNAVAILABLE;
    case RT_OTLP_INTERNAL:
        return GRPC_INTERNAL;
    }
    return GRPC_INTERNAL;
}

/* The retry delay a result carries: THROTTLED and UNAVAILABLE always carry one (0 means 1 s),
 * everything else none. */
static uint32_t result_retry_s(const rt_otlp_result *res)
{
    if (res->status != RT_OTLP_THROTTLED && res->status != RT_OTLP_UNAVAILABLE) {
        return 0;
    }
    return res->retry_after_s ? res->retry_after_s : 1;
}

void rt_otlp_ingest_encode_response(const rt_otlp_result *res, rt_buf *out)
{
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    if (res->rejected_spans > 0) {
        ps.rejected_spans = res->rejected_spans;
        /* protobuf-c wants a non-const char *; it only reads it while packing. */
        ps.error_message = (char *)res->message;
        resp.partial_success = &ps;
    }
    size_t n =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__get_packed_size(
            &resp);
    uint8_t *p = rt_buf_reserve(out, n + 1);
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&resp, p);
    out->len += n;
}

void rt_otlp_ingest_encode_status(int code, const char *message, uint32_t retry_s, rt_buf *out)
{
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    Google__Protobuf__Any *anys[1] = {&any};
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
    uint8_t ri_bytes[32];

    st.code = code;
    st.message = (char *)(message ? message : "");
    if (retry_s > 0) {
        delay.seconds = retry_s;
        ri.retry_delay = &delay;
        /* RetryInfo{Duration{int64, int32}} packs to well under 32 bytes. */
        size_t rn = google__rpc__retry_info__pack(&ri, ri_bytes);
        any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
        any.value.data = ri_bytes;
        any.value.len = rn;
        st.n_details = 1;
        st.details = anys;
    }
    size_t n = google__rpc__status__get_packed_size(&st);
    uint8_t *p = rt_buf_reserve(out, n + 1);
    google__rpc__status__pack(&st, p);
    out->len += n;
}

void rt_otlp_ingest_encode_http_body(const rt_otlp_result *res, bool json, rt_buf *out)
{
    if (res->status == RT_OTLP_OK) {
        if (json) {
            rt_otlp_json_response(res->rejected_spans, res->rejected_spans > 0 ? res->message : "",
                                  out);
        } else {
            rt_otlp_ingest_encode_response(res, out);
        }
        return;
    }
    int code = rt_otlp_ingest_grpc_code(res);
    if (json) {
        rt_otlp_json_status(code, res->message, out);
    } else {
        rt_otlp_ingest_encode_status(code, res->message, result_retry_s(res), out);
    }
}
