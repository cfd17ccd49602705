/* test_membership.c - the ring membership file: good files load in any order, every kind of
 * bad edit is rejected with the file, line and reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "membership.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static const char *write_file(const char *text)
{
    snprintf(path, sizeof path, "/tmp/rt-ring-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void expect_error(const char *text, const char *needle)
{
    char err[512] = "";
    rt_membership *m = rt_membership_load(write_file(text), err, sizeof err);
    if (m != NULL || strstr(err, needle) == NULL) {
        fail_msg("expected error containing \"%s\", got \"%s\"", needle, err);
    }
    assert_non_null(strstr(err, path)); /* names the file */
}

static void test_good_file_loads_nodes_weights_and_protocols(void **state)
{
    char err[256];
    rt_membership *m = rt_membership_load(write_file("protocol: grpc\n"
                                                     "nodes:\n"
                                                     "  - id: s2\n"
                                                     "    endpoint: 127.0.0.3:4317\n"
                                                     "    weight: 2\n"
                                                     "  - {id: s1, endpoint: '127.0.0.2:4318',"
                                                     " protocol: http}\n"),
                                          err, sizeof err);
    assert_non_null(m);
    assert_int_equal(m->n, 2);
    assert_int_equal(rt_ring_size(m->ring), 2);
    const rt_member *s1 = rt_membership_node(m, 0); /* rings sort by id */
    assert_string_equal(s1->id, "s1");
    assert_int_equal(s1->protocol, RT_MEMBER_HTTP);
    assert_int_equal(s1->weight, 1);
    assert_int_equal(s1->line, 6);
    const rt_member *s2 = rt_membership_node(m, 1);
    assert_string_equal(s2->endpoint, "127.0.0.3:4317");
    assert_int_equal(s2->protocol, RT_MEMBER_GRPC);
    assert_int_equal(s2->weight, 2);
    rt_membership_free(m);
}

static void test_order_of_nodes_does_not_change_the_ring(void **state)
{
    char err[256];
    rt_membership *a = rt_membership_load(
        write_file("nodes:\n- {id: a, endpoint: 'h:1'}\n- {id: b, endpoint: 'h:2'}\n"
                   "- {id: c, endpoint: 'h:3'}\n"),
        err, sizeof err);
    rt_membership *b = rt_membership_load(
        write_file("nodes:\n- {id: c, endpoint: 'h:3'}\n- {id: a, endpoint: 'h:1'}\n"
                   "- {id: b, endpoint: 'h:2'}\n"),
        err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(rt_ring_content_hash(a->ring) == rt_ring_content_hash(b->ring));
    for (uint64_t k = 0; k < 100000; k++) {
        uint64_t key = k * 0x9e3779b97f4a7c15ull;
        assert_int_equal(rt_ring_lookup_key(a->ring, key), rt_ring_lookup_key(b->ring, key));
    }
    rt_membership_free(a);
    rt_membership_free(b);
}

static void test_bad_edits_are_rejected_naming_line_and_reason(void **state)
{
    expect_error("nodes:\n  - {id: s1, endpoint: 'h:1'}\n  - {id: s1, endpoint: 'h:2'}\n",
                 ":3: nodes[1].id: duplicate node id \"s1\" (first at line 2)");
    expect_error("nodes:\n  - id: s1\n    endpoint: 'h:1'\n    weight: 0\n", ":4: nodes[0].weight");
    expect_error("nodes:\n  - id: s1\n    endpoint: 'h:1'\n    weight: heavy\n",
                 ":4: nodes[0].weight");
    expect_error("nodes: []\n", "the ring has no nodes");
    expect_error("nodes:\n  - {id: s1, endpoint: 'h:1'\n", ":"); /* unreadable YAML */
    expect_error("nodes:\n  - {id: s1}\n", "endpoint");
    expect_error("nodes:\n  - {id: s1, endpoint: 'h:1', colour: red}\n", "colour: unknown key");
    expect_error("protocol: carrier-pigeon\nnodes:\n  - {id: s1, endpoint: 'h:1'}\n",
                 ":1: protocol");
    expect_error("members:\n  - {id: s1, endpoint: 'h:1'}\n", "members: unknown key");
}

static void test_missing_file_is_an_error(void **state)
{
    char err[256] = "";
    assert_null(rt_membership_load("/nonexistent/ring.yaml", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/ring.yaml"));
}

static int cleanup(void **state)
{
    unlink(path);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file_loads_nodes_weights_and_protocols),
        cmocka_unit_test(test_order_of_nodes_does_not_change_the_ring),
        cmocka_unit_test(test_bad_edits_are_rejected_naming_line_and_reason),
        cmocka_unit_test(test_missing_file_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup);
}
