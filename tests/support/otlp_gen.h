/* otlp_gen.h - deterministic random ExportTraceServiceRequest generator for tests.
 *
 * The same seed always gives the same message (splitmix64 PRNG, no rand()), so a failing case
 * is reproduced by its seed. Generated requests cover: 1-4 resources (resource message present
 * or absent), 1-3 scopes each (scope present or absent), 0-20 spans each; every AnyValue kind
 * including nested arrays and kvlists (depth <= 3), bytes, empty AnyValue and KeyValue without
 * a value; events; links with flags; statuses of every code (and absent); flags; trace_state;
 * empty strings; parent ids present and absent; non-zero dropped counts; schema urls.
 * Strings are valid UTF-8 without NUL; doubles are finite (JSON-friendly).
 */
#ifndef RT_TEST_OTLP_GEN_H
#define RT_TEST_OTLP_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* Build a random request from `seed`. Every part is heap-owned by the returned tree; release it
 * with rt_gen_free() (not protobuf-c's free_unpacked). */
Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *
rt_gen_request(uint64_t seed);

/* Free a tree returned by rt_gen_request(). NULL is a no-op. */
void rt_gen_free(Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req);

/* Serialise `req` with protobuf-c. Returns a malloc'd buffer (caller frees with free()) and
 * stores its length in *len. Works for any request, generated or unpacked. */
uint8_t *
rt_gen_pack(const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req,
            size_t *len);

/* Decode `len` bytes with protobuf-c's full decoder (the reference the tests compare against).
 * Returns NULL if protobuf-c rejects them; free with rt_gen_unpack_free(). */
Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *
rt_gen_unpack(const uint8_t *buf, size_t len);
void rt_gen_unpack_free(Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req);

#endif
