/* adjusted_count.h - adjusted counts of kept spans, written the two ways a backend can read
 * them: the OTel probability-sampling threshold in the span's W3C tracestate (`ot=th:<hex>`)
 * and one numeric attribute of our own (RT_ADJ_ATTR).
 *
 * An adjusted count c >= 1 says "this kept span stands for c spans like it". The sampler knows
 * it for traces kept by a baseline policy (probabilistic: 1/ratio; reservoir: traces seen in
 * the window / traces kept) and for traces kept by a keep-all policy (exactly 1). For traces
 * kept by a rate limiter the count is unknown (RT_ADJ_UNKNOWN): the OTel rules then require
 * the threshold to be erased, and no attribute is written.
 *
 * OTel rules applied (see otlp-facts.md, "Probability sampling"):
 *   - threshold T in [0, 2^56): keep when R >= T; adjusted count = 2^56 / (2^56 - T);
 *   - T is written as up to 14 lowercase hex digits with trailing zeros removed ("0" for T = 0,
 *     i.e. count 1; 25 % is "c"; 10 % is "e6666666666666" at full precision);
 *   - a later stage may only raise T: when the span already carries `ot=...th:<T0>` from an
 *     earlier (head) sampler, the combined count is c * c0 (independent stages multiply), whose
 *     threshold is never below T0;
 *   - a stage whose probability is unknown erases `th` (and keeps every other `ot` sub-key).
 *
 * W3C tracestate rules kept: list members are `key=value` separated by commas (optional
 * spaces/tabs around them), at most 32 members; the member we modify (`ot`) moves to the front
 * (the left) and every other member keeps its order and bytes. Within the `ot` value, sub-keys
 * are `key:value` separated by ';' (e.g. "rv:...;th:8"); unknown sub-keys are kept in order.
 *
 * Pure functions, no allocation except into the caller's rt_buf. Thread-safe.
 */
#ifndef RT_ADJUSTED_COUNT_H
#define RT_ADJUSTED_COUNT_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The attribute added to every kept span whose adjusted count is known (a double). */
#define RT_ADJ_ATTR "ringtail.sampling.adjusted_count"

/* Adjusted count value meaning "unknown" (kept by a rate limiter, or a composite). */
#define RT_ADJ_UNKNOWN 0.0

/* 2^56 as the threshold space. */
#define RT_ADJ_MAX_THRESHOLD (UINT64_C(1) << 56)

/* Threshold for adjusted count `count` (>= 1): T = 2^56 - round(2^56 / count), clamped to
 * [0, 2^56 - 1]. count <= 1 (and NaN) gives 0. */
uint64_t rt_adj_threshold(double count);

/* Adjusted count of threshold T (< 2^56): 2^56 / (2^56 - T). */
double rt_adj_count(uint64_t threshold);

/* Write T as tracestate hex (1 to 14 lowercase digits, trailing zeros removed, "0" for 0) into
 * `out` (at least 15 bytes), NUL-terminated. Returns the number of digits. */
size_t rt_adj_threshold_hex(uint64_t threshold, char out[15]);

/* Parse the hex of a `th` sub-key (1 to 14 hex digits, either case; fewer digits mean the
 * missing ones are zero, so "c" is 0xc0000000000000). Returns false if malformed. */
bool rt_adj_threshold_parse(const char *hex, size_t len, uint64_t *threshold);

/* Rewrite a span's tracestate `in` (len bytes, may be empty) for a kept span whose sampling
 * stage has adjusted count `count` (>= 1, or RT_ADJ_UNKNOWN), appending the new tracestate to
 * `out` (not NUL-terminated). Returns the combined adjusted count written (count multiplied by
 * the count of a valid `th` already present, so >= 1), or RT_ADJ_UNKNOWN when `count` was
 * unknown (then `th` was erased, and an `ot` member left with no sub-keys is removed).
 *
 * A malformed `ot` value (not `key:value` sub-keys separated by ';') or an unparsable `th` is
 * treated as absent: the member is replaced by one holding only our `th` (its rv, if it had a
 * well-formed one, is kept). Members other than `ot` are copied byte for byte even if they look
 * odd; empty members (",,") are dropped. If `in` already has 32 members and no `ot`, the
 * right-most member is dropped to make room, as W3C allows. */
double rt_adj_tracestate_rewrite(const uint8_t *in, size_t len, double count, rt_buf *out);

#endif
