/* test_peer_msg.c - the envelope samplers put on what they send each other (sampler/peer_msg.c):
 * what the writer appends reads back the same, protobuf-c reads it by the schema in
 * proto/ringtail/peer/v1/peer.proto, the request around it stays a valid OTLP request for any
 * OTLP reader, and a malformed envelope is refused with a message naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "otlp_gen.h"
#include "otlp_scan.h"
#include "peer_msg.h"
#include "ringtail/peer/v1/peer.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;

static void id_for(uint8_t n, uint8_t id[16])
{
    for (int i = 0; i < 16; i++) {
        id[i] = (uint8_t)(n * 17 + i);
    }
}

/* A generated OTLP request with a HANDOFF envelope of 3 traces and 4 decisions appended. */
static uint8_t *handoff_request(size_t *len, size_t *otlp_len, size_t *env_size)
{
    Req *r = rt_gen_request(42);
    uint8_t *pb = rt_gen_pack(r, otlp_len);
    rt_gen_free(r);
    rt_buf req = RT_BUF_INIT;
    rt_buf_append(&req, pb, *otlp_len);
    free(pb);
    rt_peer_env_writer w;
    rt_peer_env_writer_init(&w);
    rt_peer_env_begin(&w, RT_PEER_HANDOFF, "sampler-2", 0x1122334455667788ull);
    rt_peer_env_deadline(&w, 1800000000000000000ull);
    for (uint8_t t = 1; t <= 3; t++) {
        rt_peer_trace tr = {.age_ns = t * 1000000000ull,
                            .root_age_ns = t == 2 ? 500 : 0,
                            .flags =
                                (t == 2 ? RT_PEER_TS_ROOT : 0) | (t == 3 ? RT_PEER_TS_HELD : 0)};
        id_for(t, tr.trace_id);
        rt_peer_env_trace(&w, &tr);
    }
    uint8_t id[16];
    id_for(10, id);
    rt_peer_env_decision(&w, id, true, "errors", 1.0);
    id_for(11, id);
    rt_peer_env_decision(&w, id, true, "tool-heavy", 3.0);
    id_for(12, id);
    rt_peer_env_decision(&w, id, false, "", 0);
    id_for(13, id);
    rt_peer_env_decision(&w, id, false, "", 0); /* dropped: the same */
    *env_size = rt_peer_env_size(&w);
    size_t before = req.len;
    rt_peer_env_finish(&w, &req);
    assert_int_equal(req.len - before, *env_size);
    rt_peer_env_writer_free(&w);
    *len = req.len;
    size_t cap;
    return rt_buf_steal(&req, &cap);
}

static void test_written_envelope_reads_back(void **state)
{
    (void)state;
    size_t len, otlp_len, env_size;
    uint8_t *req = handoff_request(&len, &otlp_len, &env_size);
    rt_peer_env env;
    char err[200];
    assert_int_equal(rt_peer_env_read(req, len, &env, err, sizeof err), 0);
    assert_int_equal(env.kind, RT_PEER_HANDOFF);
    assert_int_equal(env.sender.len, 9);
    assert_memory_equal(env.sender.p, "sampler-2", 9);
    assert_true(env.ring_hash == 0x1122334455667788ull);
    assert_true(env.deadline_unix_ns == 1800000000000000000ull);
    assert_int_equal(env.n_traces, 3);
    assert_int_equal(env.n_decisions, 4);
    rt_peer_trace t;
    size_t pos = 0;
    for (uint8_t i = 1; i <= 3; i++) {
        assert_int_equal(rt_peer_env_next_trace(&env, &pos, &t), 1);
        uint8_t id[16];
        id_for(i, id);
        assert_memory_equal(t.trace_id, id, 16);
        assert_true(t.age_ns == i * 1000000000ull);
        assert_int_equal(t.flags & RT_PEER_TS_ROOT, i == 2 ? RT_PEER_TS_ROOT : 0);
        assert_int_equal(t.flags & RT_PEER_TS_HELD, i == 3 ? RT_PEER_TS_HELD : 0);
        assert_true(t.root_age_ns == (i == 2 ? 500u : 0u));
    }
    assert_int_equal(rt_peer_env_next_trace(&env, &pos, &t), 0);
    rt_peer_decision d;
    pos = 0;
    static const char *const pol[] = {"errors", "tool-heavy", "", ""};
    for (uint8_t i = 0; i < 4; i++) {
        assert_int_equal(rt_peer_env_next_decision(&env, &pos, &d), 1);
        uint8_t id[16];
        id_for((uint8_t)(10 + i), id);
        assert_memory_equal(d.trace_id, id, 16);
        assert_int_equal(d.sampled, i < 2);
        assert_int_equal(d.policy.len, strlen(pol[i]));
        assert_memory_equal(d.policy.p, pol[i], d.policy.len);
        assert_true(d.count == (i == 0 ? 1.0 : i == 1 ? 3.0 : 0.0));
    }
    assert_int_equal(rt_peer_env_next_decision(&env, &pos, &d), 0);
    free(req);
}

/* protobuf-c, reading by the schema, sees the same envelope; and an OTLP reader that knows
 * nothing of it reads the request's spans as if it were not there. */
static void test_protobuf_c_agrees_and_otlp_readers_skip_it(void **state)
{
    (void)state;
    size_t len, otlp_len, env_size;
    uint8_t *req = handoff_request(&len, &otlp_len, &env_size);
    rt_peer_env env;
    char err[200];
    assert_int_equal(rt_peer_env_read(req, len, &env, err, sizeof err), 0);
    Ringtail__Peer__V1__PeerEnvelope *pe =
        ringtail__peer__v1__peer_envelope__unpack(NULL, env.body.len, env.body.p);
    assert_non_null(pe);
    assert_int_equal(pe->kind, RINGTAIL__PEER__V1__KIND__KIND_HANDOFF);
    assert_string_equal(pe->sender, "sampler-2");
    assert_true(pe->ring_hash == 0x1122334455667788ull);
    assert_true(pe->deadline_unix_ns == 1800000000000000000ull);
    assert_int_equal(pe->n_traces, 3);
    assert_int_equal(pe->traces[1]->flags, RT_PEER_TS_ROOT);
    assert_true(pe->traces[2]->age_ns == 3000000000ull);
    assert_int_equal(pe->traces[2]->trace_id.len, 16);
    assert_int_equal(pe->n_decisions, 2);
    assert_string_equal(pe->decisions[1]->policy, "tool-heavy");
    assert_true(pe->decisions[1]->adjusted_count == 3.0);
    assert_int_equal(pe->not_sampled_ids.len, 32);
    ringtail__peer__v1__peer_envelope__free_unpacked(pe, NULL);
    /* The OTLP side. */
    size_t spans_with = 0, spans_without = 0;
    assert_int_equal(rt_otlp_validate(req, len, &spans_with, err, sizeof err), 0);
    assert_int_equal(rt_otlp_validate(req, otlp_len, &spans_without, err, sizeof err), 0);
    assert_int_equal(spans_with, spans_without);
    Req *a = rt_gen_unpack(req, len), *b = rt_gen_unpack(req, otlp_len);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->n_resource_spans, b->n_resource_spans);
    rt_gen_unpack_free(a);
    rt_gen_unpack_free(b);
    free(req);
}

static void test_requests_without_envelope_and_announcements(void **state)
{
    (void)state;
    Req *r = rt_gen_request(7);
    size_t len;
    uint8_t *pb = rt_gen_pack(r, &len);
    rt_gen_free(r);
    rt_peer_env env;
    char err[200];
    assert_int_equal(rt_peer_env_read(pb, len, &env, err, sizeof err), 0);
    assert_int_equal(env.kind, RT_PEER_NONE);
    free(pb);
    assert_int_equal(rt_peer_env_read((const uint8_t *)"", 0, &env, err, sizeof err), 0);
    assert_int_equal(env.kind, RT_PEER_NONE);
    rt_buf req = RT_BUF_INIT;
    rt_peer_env_writer w;
    rt_peer_env_writer_init(&w);
    rt_peer_env_begin(&w, RT_PEER_ANNOUNCE, "sampler-4", 9);
    rt_peer_env_announce(&w, RT_PEER_ANNOUNCE_LEAVING);
    rt_peer_env_finish(&w, &req);
    rt_peer_env_writer_free(&w);
    assert_int_equal(rt_peer_env_read(req.data, req.len, &env, err, sizeof err), 0);
    assert_int_equal(env.kind, RT_PEER_ANNOUNCE);
    assert_int_equal(env.announce, RT_PEER_ANNOUNCE_LEAVING);
    assert_int_equal(env.n_traces + env.n_decisions, 0);
    assert_int_equal(rt_peer_env_late(&env, UINT64_MAX), 0); /* no deadline: never late */
    rt_buf_free(&req);
}

static void test_deadline_says_how_late_a_request_is(void **state)
{
    (void)state;
    rt_peer_env env = {.kind = RT_PEER_FORWARD, .deadline_unix_ns = 5000};
    assert_int_equal(rt_peer_env_late(&env, 4999), 0);
    assert_int_equal(rt_peer_env_late(&env, 5000), 0);
    assert_int_equal(rt_peer_env_late(&env, 7000), 2000);
}

/* An envelope body, hand-made: field RT_PEER_FIELD around `body`. */
static void read_bad(const uint8_t *body, size_t n, const char *want)
{
    rt_buf req = RT_BUF_INIT;
    rt_pb_append_len_field(&req, RT_PEER_FIELD, body, n);
    rt_peer_env env;
    char err[200] = "";
    assert_int_equal(rt_peer_env_read(req.data, req.len, &env, err, sizeof err), -1);
    if (strstr(err, want) == NULL) {
        fail_msg("error \"%s\" does not name \"%s\"", err, want);
    }
    rt_buf_free(&req);
}

static void test_malformed_envelopes_are_refused_with_the_field(void **state)
{
    (void)state;
    static const uint8_t no_kind[] = {0x12, 0x01, 'a'};
    read_bad(no_kind, sizeof no_kind, "kind: missing");
    static const uint8_t bad_kind[] = {0x08, 0x09};
    read_bad(bad_kind, sizeof bad_kind, "kind: unknown");
    static const uint8_t kind_as_string[] = {0x0a, 0x01, 'x'};
    read_bad(kind_as_string, sizeof kind_as_string, "kind: not a varint");
    /* a TraceState whose trace_id has 15 bytes */
    uint8_t short_id[] = {0x08, 0x02, 0x2a, 0x11, 0x0a, 0x0f, 0, 0, 0, 0, 0,
                          0,    0,    0,    0,    0,    0,    0, 0, 0, 0};
    read_bad(short_id, sizeof short_id, "TraceState.trace_id: not 16 bytes");
    uint8_t odd_ids[4 + 17] = {0x08, 0x02, 0x3a, 0x11};
    read_bad(odd_ids, 4 + 17, "not_sampled_ids");
    uint8_t truncated[] = {0x08, 0x02, 0x32, 0x40, 0x0a};
    read_bad(truncated, sizeof truncated, "decisions: truncated");
    /* a policy name over RT_PEER_POLICY_MAX */
    rt_buf body = RT_BUF_INIT;
    rt_pb_append_tag(&body, 1, RT_PB_WT_VARINT);
    rt_pb_append_varint(&body, RT_PEER_HANDOFF);
    rt_buf dec = RT_BUF_INIT;
    uint8_t id[16] = {1};
    rt_pb_append_len_field(&dec, 1, id, 16);
    char longname[300];
    memset(longname, 'p', sizeof longname);
    rt_pb_append_len_field(&dec, 2, longname, sizeof longname);
    rt_pb_append_len_field(&body, 6, dec.data, dec.len);
    read_bad(body.data, body.len, "Decision.policy");
    rt_buf_free(&dec);
    rt_buf_free(&body);
    /* the envelope field with the wrong wire type */
    rt_buf req = RT_BUF_INIT;
    rt_pb_append_tag(&req, RT_PEER_FIELD, RT_PB_WT_VARINT);
    rt_pb_append_varint(&req, 1);
    rt_peer_env env;
    char err[200];
    assert_int_equal(rt_peer_env_read(req.data, req.len, &env, err, sizeof err), -1);
    assert_non_null(strstr(err, "wrong wire type"));
    rt_buf_free(&req);
}

/* A writer cuts a policy name at RT_PEER_POLICY_MAX, so what it writes is always readable. */
static void test_long_policy_names_are_cut_not_refused(void **state)
{
    (void)state;
    char longname[400];
    memset(longname, 'q', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    rt_buf req = RT_BUF_INIT;
    rt_peer_env_writer w;
    rt_peer_env_writer_init(&w);
    rt_peer_env_begin(&w, RT_PEER_FORWARD, "s", 0);
    uint8_t id[16] = {9};
    rt_peer_env_decision(&w, id, true, longname, 2.0);
    rt_peer_env_finish(&w, &req);
    rt_peer_env_writer_free(&w);
    rt_peer_env env;
    char err[200];
    assert_int_equal(rt_peer_env_read(req.data, req.len, &env, err, sizeof err), 0);
    rt_peer_decision d;
    size_t pos = 0;
    assert_int_equal(rt_peer_env_next_decision(&env, &pos, &d), 1);
    assert_int_equal(d.policy.len, RT_PEER_POLICY_MAX);
    rt_buf_free(&req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_written_envelope_reads_back),
        cmocka_unit_test(test_protobuf_c_agrees_and_otlp_readers_skip_it),
        cmocka_unit_test(test_requests_without_envelope_and_announcements),
        cmocka_unit_test(test_deadline_says_how_late_a_request_is),
        cmocka_unit_test(test_malformed_envelopes_are_refused_with_the_field),
        cmocka_unit_test(test_long_policy_names_are_cut_not_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
