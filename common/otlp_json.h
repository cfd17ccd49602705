/* otlp_json.h - OTLP/JSON <-> protobuf for ExportTraceServiceRequest, per the OTLP JSON rules:
 * hex trace/span ids (case-insensitive on input), integer enums (enum names accepted on input),
 * 64-bit integers as decimal strings (numbers accepted on input), lowerCamelCase keys
 * (snake_case accepted on input), bytesValue as base64, unknown fields ignored.
 */
#ifndef RT_OTLP_JSON_H
#define RT_OTLP_JSON_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

/* Deepest nesting accepted in either direction: JSON containers ({ and [) on input and output,
 * nested protobuf messages on input to rt_otlp_pb_to_json. Deeper documents are rejected with an
 * error that says so, before any recursion happens. */
#define RT_OTLP_JSON_MAX_DEPTH 64

/* Parse an OTLP/JSON ExportTraceServiceRequest and append its protobuf encoding to `out`.
 * Returns 0, or -1 with a message in `err` naming the problem and where it is
 * (e.g. "resourceSpans[0].scopeSpans[1].spans[3].traceId: not 32 hex digits"). */
int rt_otlp_json_to_pb(const char *json, size_t len, rt_buf *out, char *err, size_t errlen);

/* Render a protobuf ExportTraceServiceRequest as OTLP/JSON (one line, no trailing newline),
 * appended to `out`. Returns 0, or -1 with a message in `err` if `pb` does not decode. */
int rt_otlp_pb_to_json(const uint8_t *pb, size_t len, rt_buf *out, char *err, size_t errlen);

/* JSON form of ExportTraceServiceResponse: {} or {"partialSuccess":{...}}. */
void rt_otlp_json_response(int64_t rejected_spans, const char *error_message, rt_buf *out);
/* JSON form of google.rpc.Status: {"code":N,"message":"..."}. */
void rt_otlp_json_status(int code, const char *message, rt_buf *out);

#endif
