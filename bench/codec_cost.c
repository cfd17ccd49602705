/* codec_cost.c - rt-bench-codec-cost: the per-span cost of what the router's hot path is built
 * from (validate, walk + ring lookup), beside a plain copy of the same bytes.
 *
 *   rt-bench-codec-cost --mode none|copy|validate|route [--iters N] [--spans N]
 *
 * Each mode builds the same agent-shaped request (spans named and attributed like an agent
 * turn: gen_ai.* attributes, token counts, MCP ids) and the same 3-node ring, then runs its
 * loop N times and prints spans/s. Under callgrind, (Ir(mode) - Ir(none)) / (N * spans) is the
 * instruction count per span with set-up subtracted; bench/run_codec_cost.sh does that.
 */
#include "alloc.h"
#include "otlp_scan.h"
#include "ring.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_request.h"
}

int main(int argc, char **argv)
{
    const char *mode = "none";
    long iters = 2000, nspans = 512;
    static const struct option opts[] = {{"mode", required_argument, NULL, 'm'},
                                         {"iters", required_argument, NULL, 'i'},
                                         {"spans", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'm') {
            mode = optarg;
        } else if (c == 'i') {
            iters = atol(optarg);
        } else if (c == 's') {
            nspans = atol(optarg);
        } else {
            fprintf(stderr, "usage: rt-bench-codec-cost --mode none|copy|validate|route "
                            "[--iters N] [--spans N]\n");
            return 2;
        }
    }
    size_t len;
    uint8_t *req = build_request((size_t)nspans, &len);
    rt_ring_node_spec nodes[3] = {
        {"sampler-1", "a:1", 1}, {"sampler-2", "b:1", 1}, {"sampler-3", "c:1", 1}};
    char err[256];
    rt_ring *ring = rt_ring_new(nodes, 3, err, sizeof err);
    uint8_t *copy = rt_malloc(len);
    uint64_t sink = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long it = 0; it < iters; it++) {
        if (strcmp(mode, "copy") == 0) {
            memcpy(copy, req, len);
            sink += copy[it % len];
        } else if (strcmp(mode, "validate") == 0) {
            size_t n;
            if (rt_otlp_validate(req, len, &n, err, sizeof err) != 0) {
                fprintf(stderr, "validate: %s\n", err);
                return 1;
            }
            sink += n;
        } else if (strcmp(mode, "route") == 0) {
            rt_otlp_scan sc;
            rt_otlp_span_view v;
            rt_otlp_scan_init(&sc, req, len);
            while (rt_otlp_scan_next(&sc, &v) == 1) {
                sink += (uint64_t)rt_ring_lookup(ring, v.trace_id.p, v.trace_id.len);
                sink += v.span.len;
            }
        } else if (strcmp(mode, "none") != 0) {
            fprintf(stderr, "unknown mode %s\n", mode);
            return 2;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("mode=%s spans_per_request=%ld request_bytes=%zu bytes_per_span=%.1f iters=%ld "
           "spans_per_s=%.0f sink=%llu\n",
           mode, nspans, len, (double)len / (double)nspans, iters,
           secs > 0 ? (double)iters * (double)nspans / secs : 0.0, (unsigned long long)sink);
    free(copy);
    rt_ring_free(ring);
    return 0;
}
