/* otlp_ingest.h - the transport-independent half of an OTLP server: body decoding and the
 * encoding of answers. Shared by http_server.c and grpc_server.c so both give the same errors.
 */
#ifndef RT_OTLP_INGEST_H
#define RT_OTLP_INGEST_H

#include "buf.h"
#include "otlp_server.h"

/* Turn a received body into a validated protobuf ExportTraceServiceRequest (`handler_checks`:
 * not validated here, because the handler's own walk checks it (the router's split); then
 * *span_count is 0).
 * `gzip`: the body is gzip-compressed. `json`: the (inflated) body is OTLP/JSON.
 * On success returns 0 and sets *pb / *pb_len (pointing into `body` or `scratch`) and
 * *span_count. On failure returns -1 and fills `err` (BAD_DATA or TOO_LARGE, with a message
 * that names the problem: "gzip: ...", "json: ...", "protobuf: ..."). */
int rt_otlp_ingest_decode(const uint8_t *body, size_t len, bool gzip, bool json, size_t max_bytes,
                          bool handler_checks, rt_buf *scratch, rt_buf *scratch2,
                          const uint8_t **pb, size_t *pb_len, size_t *span_count,
                          rt_otlp_result *err);

/* Encode the answer body for an HTTP response: ExportTraceServiceResponse on success (with
 * partial_success when rejected_spans > 0), google.rpc.Status otherwise; JSON or protobuf. */
void rt_otlp_ingest_encode_http_body(const rt_otlp_result *res, bool json, rt_buf *out);
/* HTTP status code for a result. */
int rt_otlp_ingest_http_code(const rt_otlp_result *res);
/* gRPC status code for a result. */
int rt_otlp_ingest_grpc_code(const rt_otlp_result *res);
/* Encode the protobuf ExportTraceServiceResponse (for gRPC OK). */
void rt_otlp_ingest_encode_response(const rt_otlp_result *res, rt_buf *out);
/* Encode a google.rpc.Status with an optional RetryInfo detail (retry_s > 0), for the
 * grpc-status-details-bin trailer and for HTTP error bodies. */
void rt_otlp_ingest_encode_status(int code, const char *message, uint32_t retry_s, rt_buf *out);

#endif
