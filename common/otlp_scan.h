/* otlp_scan.h - zero-allocation walker over an encoded ExportTraceServiceRequest.
 *
 * (Contract of the part other modules rely on; the walker's full API is defined below it.)
 */
#ifndef RT_OTLP_SCAN_H
#define RT_OTLP_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* Check that `pb` is a well-formed ExportTraceServiceRequest: every length in bounds, every
 * wire type right for its field, nested messages well-formed down to spans, events, links,
 * KeyValue and AnyValue. Counts spans into *span_count. Returns 0, or -1 with a message in
 * `err` that says what is wrong and at which byte offset. An empty buffer is valid (0 spans). */
int rt_otlp_validate(const uint8_t *pb, size_t len, size_t *span_count, char *err, size_t errlen);

#endif
