/* router_cost.c - rt-bench-router-cost: the per-span cost of the router's forwarding loop on a
 * 512-span agent-shaped request, beside a plain copy of the same bytes.
 *
 *   rt-bench-router-cost --mode none|copy|check|split|split_send [--iters N] [--spans N] [--nodes
 * N]
 *
 * split is what router/forward.c route() does per request: walk every span (otlp_scan), check
 * the trace id, hash it and look its owner up on the ring, group the span's bytes per owner
 * under its resource and scope (otlp_encode), and write one request per owner. split_send adds
 * the one copy of each part rt_otlp_client_export makes. (Bench tools link libringtail only, so
 * the loop is restated here; keep it in step with route().) Under callgrind,
 * (Ir(mode) - Ir(none)) / (N * spans) is the instruction count per span with set-up subtracted:
 * bench/router_cost.sh does that.
 */
#include "alloc.h"
#include "buf.h"
#include "otlp_encode.h"
#include "otlp_scan.h"
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
    rt_otlp_enc enc;
    rt_buf out;
    uint64_t mark;
    size_t cur_res, cur_scope, spans;
} owner;

/* One request through the forwarding loop: returns the bytes written over all parts. */
static size_t split(const uint8_t *pb, size_t len, const rt_ring *ring, owner *own, size_t *touched,
                    uint64_t mark, rt_buf *sent)
{
    size_t n_touched = 0, bytes = 0;
    rt_otlp_scan sc;
    rt_otlp_span_view v;
    rt_otlp_scan_init_ids(&sc, pb, len); /* as router/forward.c walks */
    while (rt_otlp_scan_next(&sc, &v) == 1) {
        if (v.trace_id.len != 16) {
            continue;
        }
        uint64_t a, b;
        memcpy(&a, v.trace_id.p, 8);
        memcpy(&b, v.trace_id.p + 8, 8);
        if ((a | b) == 0) {
            continue;
        }
        int o = rt_ring_lookup_key(ring, rt_ring_key(v.trace_id.p, 16));
        owner *n = &own[o];
        if (n->mark != mark) {
            n->mark = mark;
            n->cur_res = n->cur_scope = SIZE_MAX;
            n->spans = 0;
            rt_buf_reset(&n->out);
            rt_otlp_enc_begin(&n->enc, &n->out);
            touched[n_touched++] = (size_t)o;
        }
        if (n->cur_res != v.resource_index) {
            n->cur_res = v.resource_index;
            n->cur_scope = SIZE_MAX;
            rt_otlp_enc_resource(&n->enc, v.has_resource ? v.resource.p : NULL, v.resource.len,
                                 v.resource_schema_url.p, v.resource_schema_url.len);
        }
        if (n->cur_scope != v.scope_seq) {
            n->cur_scope = v.scope_seq;
            rt_otlp_enc_scope(&n->enc, v.has_scope ? v.scope.p : NULL, v.scope.len,
                              v.scope_schema_url.p, v.scope_schema_url.len);
        }
        rt_otlp_enc_span(&n->enc, v.span.p, v.span.len);
        n->spans++;
    }
    for (size_t i = 0; i < n_touched; i++) {
        owner *n = &own[touched[i]];
        bytes += rt_otlp_enc_finish(&n->enc);
        if (sent) {
            rt_buf_reset(sent);
            rt_buf_append(sent, n->out.data, n->out.len);
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
        rt_otlp_enc_init(&own[i].enc);
        rt_buf_init(&own[i].out);
    }
    rt_buf sent = RT_BUF_INIT;
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
        sink += split(req, len, ring, own, touched, 1, m == 3 ? &sent : NULL);
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
            sink += split(req, len, ring, own, touched, (uint64_t)it + 2, m == 3 ? &sent : NULL);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("mode=%s spans_per_request=%ld nodes=%ld request_bytes=%zu iters=%ld spans_per_s=%.0f "
           "sink=%llu\n",
           mode, nspans, nnodes, len, iters, secs > 0 ? (double)iters * (double)nspans / secs : 0.0,
           (unsigned long long)sink);
    for (long i = 0; i < nnodes; i++) {
        rt_otlp_enc_free(&own[i].enc);
        rt_buf_free(&own[i].out);
    }
    rt_buf_free(&sent);
    free(own);
    free(touched);
    free(copy);
    rt_ring_free(ring);
    return 0;
}
