/* router_cost.c - rt-bench-router-cost: the per-span cost of the router's forwarding loop on a
 * 512-span agent-shaped request, beside a plain copy of the same bytes.
 *
 *   rt-bench-router-cost --mode none|copy|check|split|split_send [--iters N] [--spans N]
 *                        [--nodes N]
 *
 * split is what router/forward.c route() does per request, through the same code
 * (common/otlp_split.c): one walk that is also the structural check, the trace-id check, a
 * MurmurHash3 + Maglev lookup per run of spans of one trace, grouping of span runs per owner, and
 * writing each owner's part (here into a buffer per owner reused across requests). split_send
 * writes each part into a fresh buffer, as forward.c does before handing it to the client
 * (rt_otlp_client_export_buf takes it without a copy), and frees it, as the client does when
 * the export is done. check is rt_otlp_check_structure alone, what the listeners ran before
 * the walk was fused into the split (no longer on the router's path). Under callgrind,
 * (Ir(mode) - Ir(none)) / (N * spans) is the instruction count per span with set-up subtracted:
 * bench/router_cost.sh does that.
 */
#include "alloc.h"
#include "buf.h"
#include "otlp_scan.h"
#include "otlp_split.h"
#include "ring.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The request builder is the one of bench/codec_cost.c, so both benches measure the same
 * bytes. */
#include "bench_request.h"
}

typedef struct owner {
    rt_otlp_part part;
    rt_buf out;
    uint64_t mark;
} owner;

typedef struct bench {
    const rt_ring *ring;
    owner *own;
    size_t *touched;
    size_t n_touched;
    uint64_t mark;
} bench;

static int bench_owner(void *arg, const uint8_t *trace_id)
{
    bench *b = arg;
    return rt_ring_lookup_key(b->ring, rt_ring_key(trace_id, 16));
}

static rt_otlp_part *bench_part(void *arg, int o)
{
    bench *b = arg;
    owner *n = &b->own[o];
    if (n->mark != b->mark) {
        n->mark = b->mark;
        rt_otlp_part_reset(&n->part);
        b->touched[b->n_touched++] = (size_t)o;
    }
    return &n->part;
}

/* One request through the forwarding loop: returns the bytes written over all parts. */
static size_t split(rt_otlp_splitter *sp, bench *b, const uint8_t *pb, size_t len, uint64_t mark,
                    int send)
{
    size_t bytes = 0;
    b->mark = mark;
    b->n_touched = 0;
    if (rt_otlp_split(sp, pb, len) != 0) {
        fprintf(stderr, "split: %s\n", sp->err);
        exit(1);
    }
    for (size_t i = 0; i < b->n_touched; i++) {
        owner *n = &b->own[b->touched[i]];
        if (send) {
            rt_buf body = RT_BUF_INIT;
            bytes += rt_otlp_part_write(&n->part, &body);
            rt_buf_free(&body);
        } else {
            rt_buf_reset(&n->out);
            bytes += rt_otlp_part_write(&n->part, &n->out);
        }
    }
    return bytes;
}

int main(int argc, char **argv)
{
    const char *mode = "none";
    long iters = 2000, nspans = 512, nnodes = 3;
    static const struct option opts[] = {{"mode", required_argument, NULL, 'm'},
                                         {"iters", required_argument, NULL, 'i'},
                                         {"spans", required_argument, NULL, 's'},
                                         {"nodes", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'm') {
            mode = optarg;
        } else if (c == 'i') {
            iters = atol(optarg);
        } else if (c == 's') {
            nspans = atol(optarg);
        } else if (c == 'n') {
            nnodes = atol(optarg);
        } else {
            fprintf(stderr, "usage: rt-bench-router-cost --mode none|copy|check|split|split_send "
                            "[--iters N] [--spans N] [--nodes N]\n");
            return 2;
        }
    }
    if (nnodes < 1 || nnodes > 64) {
        fprintf(stderr, "--nodes must be 1..64\n");
        return 2;
    }
    size_t len;
    uint8_t *req = build_request((size_t)nspans, &len);
    rt_ring_node_spec nodes[64];
    char ids[64][16];
    for (long i = 0; i < nnodes; i++) {
        snprintf(ids[i], sizeof ids[i], "sampler-%ld", i + 1);
        nodes[i] = (rt_ring_node_spec){ids[i], "x:1", 1};
    }
    char err[256];
    rt_ring *ring = rt_ring_new(nodes, (size_t)nnodes, err, sizeof err);
    owner *own = rt_calloc((size_t)nnodes, sizeof *own);
    size_t *touched = rt_calloc((size_t)nnodes, sizeof *touched);
    for (long i = 0; i < nnodes; i++) {
        rt_otlp_part_init(&own[i].part);
        rt_buf_init(&own[i].out);
    }
    bench b = {ring, own, touched, 0, 0};
    rt_otlp_splitter sp;
    rt_otlp_splitter_init(&sp, bench_owner, bench_part, &b);
    uint8_t *copy = rt_malloc(len);
    uint64_t sink = 0;
    int m = strcmp(mode, "copy") == 0         ? 1
            : strcmp(mode, "split") == 0      ? 2
            : strcmp(mode, "split_send") == 0 ? 3
            : strcmp(mode, "check") == 0      ? 4
            : strcmp(mode, "none") == 0       ? 0
                                              : -1;
    if (m < 0) {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    if (m >= 2 && m <= 3) { /* warm the encoders' arrays and buffers, as a running worker's are */
        sink += split(&sp, &b, req, len, 1, m == 3);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long it = 0; it < iters; it++) {
        if (m == 1) {
            memcpy(copy, req, len);
            sink += copy[it % len];
        } else if (m == 4) { /* the listener's structural check (server opts) */
            size_t n = 0;
            char why[RT_OTLP_ERR_MAX];
            sink += (uint64_t)rt_otlp_check_structure(req, len, &n, why, sizeof why) + n;
        } else if (m >= 2) {
            sink += split(&sp, &b, req, len, (uint64_t)it + 2, m == 3);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("mode=%s spans_per_request=%ld nodes=%ld request_bytes=%zu iters=%ld spans_per_s=%.0f "
           "sink=%llu\n",
           mode, nspans, nnodes, len, iters, secs > 0 ? (double)iters * (double)nspans / secs : 0.0,
           (unsigned long long)sink);
    for (long i = 0; i < nnodes; i++) {
        rt_otlp_part_free(&own[i].part);
        rt_buf_free(&own[i].out);
    }
    rt_otlp_splitter_free(&sp);
    free(own);
    free(touched);
    free(copy);
    free(req);
    rt_ring_free(ring);
    return 0;
}
