/* test_config.c - table-driven YAML config: every field type, defaults from the table, bounds,
 * exact file:line:key error messages, nested sections, lists, custom callbacks, duration and
 * size parsing edge cases, and YAML syntax errors reported with their line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "alloc.h"
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a config shaped like ringtail's own ---------------------------------------------------- */

typedef struct tls_cfg {
    bool enabled;
    char *cert;
} tls_cfg;

typedef struct listeners_cfg {
    char *http;
    char *grpc;
    char *admin;
    tls_cfg tls;
} listeners_cfg;

typedef struct policy {
    char *name;
    int type;
    uint64_t threshold_ns;
} policy;

typedef struct policy_list {
    policy *items;
    size_t len;
} policy_list;

typedef struct test_cfg {
    char *name;
    bool debug;
    int64_t offset;
    uint64_t max_conns;
    double ratio;
    uint64_t decision_wait_ns;
    uint64_t buffer_bytes;
    int mode;
    rt_cfg_strlist peers;
    listeners_cfg listeners;
    policy_list policies;
} test_cfg;

static const char *const modes[] = {"fast", "balanced", "thorough", NULL};
static const char *const policy_types[] = {"always", "latency", "error", NULL};

static const rt_cfg_field tls_fields[] = {
    {.key = "enabled",
     .type = RT_CFG_BOOL,
     .offset = offsetof(tls_cfg, enabled),
     .def = "false",
     .help = "Serve TLS."},
    {.key = "cert",
     .type = RT_CFG_STRING,
     .offset = offsetof(tls_cfg, cert),
     .help = "PEM certificate file."},
    {0},
};

static const rt_cfg_field listener_fields[] = {
    {.key = "http",
     .type = RT_CFG_STRING,
     .offset = offsetof(listeners_cfg, http),
     .def = "0.0.0.0:4318",
     .help = "OTLP/HTTP address."},
    {.key = "grpc",
     .type = RT_CFG_STRING,
     .offset = offsetof(listeners_cfg, grpc),
     .def = "0.0.0.0:4317",
     .help = "OTLP/gRPC address."},
    {.key = "admin",
     .type = RT_CFG_STRING,
     .offset = offsetof(listeners_cfg, admin),
     .def = "127.0.0.1:9464",
     .help = "Admin address."},
    {.key = "tls",
     .type = RT_CFG_SECTION,
     .offset = offsetof(listeners_cfg, tls),
     .sub = tls_fields,
     .help = "TLS settings."},
    {0},
};

static const rt_cfg_field policy_fields[] = {
    {.key = "name",
     .type = RT_CFG_STRING,
     .offset = offsetof(policy, name),
     .flags = RT_CFG_F_REQUIRED,
     .help = "Policy name."},
    {.key = "type",
     .type = RT_CFG_ENUM,
     .offset = offsetof(policy, type),
     .def = "always",
     .choices = policy_types,
     .help = "Policy kind."},
    {.key = "threshold",
     .type = RT_CFG_DURATION,
     .offset = offsetof(policy, threshold_ns),
     .def = "0",
     .max = "1h",
     .help = "Latency threshold."},
    {0},
};

static void policies_free(void *field)
{
    policy_list *pl = field;
    for (size_t i = 0; i < pl->len; i++) {
        rt_cfg_free_struct(policy_fields, &pl->items[i]);
    }
    free(pl->items);
    pl->items = NULL;
    pl->len = 0;
}

/* A list of policy mappings, each applied with its own sub-table. */
static int policies_parse(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path, void *field)
{
    if (node->kind != RT_CFG_NODE_SEQUENCE) {
        rt_cfg_error(ctx, node->line, path, "expected a list of policies, got a %s",
                     rt_cfg_node_kind_name(node));
        return -1;
    }
    policy_list nl = {rt_calloc(node->n + 1, sizeof(policy)), 0};
    int rc = 0;
    for (size_t i = 0; i < node->n; i++) {
        char *ip = rt_sprintf("%s[%zu]", path, i);
        policy *p = &nl.items[nl.len++];
        rt_cfg_set_defaults(policy_fields, p);
        if (rt_cfg_apply(ctx, policy_fields, node->items[i], ip, p) != 0) {
            rc = -1;
        }
        free(ip);
    }
    if (rc != 0) {
        policies_free(&nl);
        return -1;
    }
    policies_free(field);
    *(policy_list *)field = nl;
    return 0;
}

static const rt_cfg_field test_fields[] = {
    {.key = "name",
     .type = RT_CFG_STRING,
     .offset = offsetof(test_cfg, name),
     .def = "ringtail",
     .help = "Instance name."},
    {.key = "debug",
     .type = RT_CFG_BOOL,
     .offset = offsetof(test_cfg, debug),
     .def = "no",
     .help = "Debug logging."},
    {.key = "offset",
     .type = RT_CFG_INT64,
     .offset = offsetof(test_cfg, offset),
     .def = "-5",
     .min = "-100",
     .max = "100",
     .help = "A signed number."},
    {.key = "max_conns",
     .type = RT_CFG_UINT64,
     .offset = offsetof(test_cfg, max_conns),
     .def = "1024",
     .min = "1",
     .max = "65536",
     .help = "Connection limit."},
    {.key = "ratio",
     .type = RT_CFG_DOUBLE,
     .offset = offsetof(test_cfg, ratio),
     .def = "0.25",
     .min = "0",
     .max = "1",
     .help = "Sampling ratio."},
    {.key = "decision_wait",
     .type = RT_CFG_DURATION,
     .offset = offsetof(test_cfg, decision_wait_ns),
     .def = "30s",
     .min = "1ms",
     .max = "10m",
     .help = "How long to wait for a trace's spans."},
    {.key = "buffer",
     .type = RT_CFG_SIZE,
     .offset = offsetof(test_cfg, buffer_bytes),
     .def = "64MiB",
     .min = "1KiB",
     .max = "1GiB",
     .help = "Buffer size."},
    {.key = "mode",
     .type = RT_CFG_ENUM,
     .offset = offsetof(test_cfg, mode),
     .def = "balanced",
     .choices = modes,
     .help = "Mode."},
    {.key = "peers",
     .type = RT_CFG_STRLIST,
     .offset = offsetof(test_cfg, peers),
     .def = "[a:1, b:2]",
     .help = "Peer addresses."},
    {.key = "listeners",
     .type = RT_CFG_SECTION,
     .offset = offsetof(test_cfg, listeners),
     .sub = listener_fields,
     .help = "Where to listen."},
    {.key = "policies",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(test_cfg, policies),
     .def = "[{name: keep-all}]",
     .parse = policies_parse,
     .free = policies_free,
     .type_name = "list of policies",
     .help = "Sampling policies."},
    {0},
};

/* ---- helpers -------------------------------------------------------------------------------- */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rt_test_config.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int remove_tmpdir(void **state)
{
    char *cmd = rt_sprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

/* Write `text` to <tmpdir>/<name>; returns the path (caller frees). */
static char *write_file(const char *name, const char *text)
{
    char *path = rt_sprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
    return path;
}

/* Load `text` as file `name` with test_fields; returns rt_cfg_load_file's result and leaves
 * the first error in err. The caller frees *cfg. */
static int load_text(const char *name, const char *text, test_cfg *cfg, char *err, size_t cap,
                     char **pathp)
{
    memset(cfg, 0, sizeof *cfg);
    char *path = write_file(name, text);
    err[0] = '\0';
    int rc = rt_cfg_load_file(path, test_fields, cfg, err, cap);
    *pathp = path;
    return rc;
}

/* Assert that loading `text` fails with exactly "<path>:<rest>". */
static void expect_error(const char *name, const char *text, const char *rest)
{
    test_cfg cfg;
    char err[512], *path = NULL;
    int rc = load_text(name, text, &cfg, err, sizeof err, &path);
    char *want = rt_sprintf("%s:%s", path, rest);
    if (rc == 0 || strcmp(err, want) != 0) {
        print_error("want: %s\n got: %s (rc %d)\n", want, err, rc);
    }
    assert_int_equal(rc, -1);
    assert_string_equal(err, want);
    free(want);
    free(path);
    rt_cfg_free_struct(test_fields, &cfg);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_table_is_valid_and_defaults_come_from_it(void **state)
{
    char err[256] = "";
    assert_int_equal(rt_cfg_check_table(test_fields, err, sizeof err), 0);

    test_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    rt_cfg_set_defaults(test_fields, &cfg);
    assert_string_equal(cfg.name, "ringtail");
    assert_false(cfg.debug);
    assert_int_equal(cfg.offset, -5);
    assert_int_equal(cfg.max_conns, 1024);
    assert_true(cfg.ratio == 0.25);
    assert_int_equal(cfg.decision_wait_ns, 30ull * 1000000000ull);
    assert_int_equal(cfg.buffer_bytes, 64ull << 20);
    assert_int_equal(cfg.mode, 1);
    assert_int_equal(cfg.peers.len, 2);
    assert_string_equal(cfg.peers.items[0], "a:1");
    assert_string_equal(cfg.peers.items[1], "b:2");
    assert_string_equal(cfg.listeners.http, "0.0.0.0:4318");
    assert_string_equal(cfg.listeners.admin, "127.0.0.1:9464");
    assert_false(cfg.listeners.tls.enabled);
    assert_null(cfg.listeners.tls.cert);
    assert_int_equal(cfg.policies.len, 1);
    assert_string_equal(cfg.policies.items[0].name, "keep-all");
    assert_int_equal(cfg.policies.items[0].type, 0);

    rt_cfg_free_struct(test_fields, &cfg);
    assert_null(cfg.name);
    assert_null(cfg.peers.items);
    assert_int_equal(cfg.peers.len, 0);
    assert_null(cfg.listeners.http);
    assert_null(cfg.policies.items);
}

static void test_an_empty_file_gives_the_defaults(void **state)
{
    test_cfg cfg;
    char err[512], *path;
    assert_int_equal(load_text("empty.yaml", "", &cfg, err, sizeof err, &path), 0);
    assert_string_equal(cfg.name, "ringtail");
    assert_int_equal(cfg.decision_wait_ns, 30000000000ull);
    rt_cfg_free_struct(test_fields, &cfg);
    free(path);
    assert_int_equal(load_text("comments.yaml", "# nothing\n", &cfg, err, sizeof err, &path), 0);
    assert_int_equal(cfg.max_conns, 1024);
    rt_cfg_free_struct(test_fields, &cfg);
    free(path);
}

static void test_broken_tables_are_caught_by_check_table(void **state)
{
    test_cfg c;
    char err[256];
    const rt_cfg_field out_of_bounds[] = {
        {.key = "n", .type = RT_CFG_UINT64, .offset = 0, .def = "0", .min = "1"},
        {0},
    };
    assert_int_equal(rt_cfg_check_table(out_of_bounds, err, sizeof err), -1);
    assert_string_equal(err, "config table: n: 0 is below the minimum 1");

    const rt_cfg_field bad_duration[] = {
        {.key = "sec",
         .type = RT_CFG_SECTION,
         .sub =
             (const rt_cfg_field[]){
                 {.key = "wait", .type = RT_CFG_DURATION, .offset = 0, .def = "5 seconds"},
                 {0},
             }},
        {0},
    };
    assert_int_equal(rt_cfg_check_table(bad_duration, err, sizeof err), -1);
    assert_string_equal(err, "config table: sec.wait: \"5 seconds\" is not a duration "
                             "(examples: 30s, 500ms, 1m)");

    const rt_cfg_field bad_enum[] = {
        {.key = "m", .type = RT_CFG_ENUM, .offset = 0, .def = "quick", .choices = modes},
        {0},
    };
    assert_int_equal(rt_cfg_check_table(bad_enum, err, sizeof err), -1);
    assert_string_equal(err, "config table: m: \"quick\" is not one of: fast, balanced, thorough");

    const rt_cfg_field twice[] = {
        {.key = "a", .type = RT_CFG_BOOL, .offset = 0},
        {.key = "a", .type = RT_CFG_BOOL, .offset = 1},
        {0},
    };
    assert_int_equal(rt_cfg_check_table(twice, err, sizeof err), -1);
    assert_string_equal(err, "config table: a: key appears twice");

    const rt_cfg_field inverted[] = {
        {.key = "d", .type = RT_CFG_DURATION, .offset = 0, .min = "1m", .max = "30s"},
        {0},
    };
    assert_int_equal(rt_cfg_check_table(inverted, err, sizeof err), -1);
    assert_string_equal(err, "config table: d: minimum 1m is above maximum 30s");
    (void)c;
}

static void test_every_type_is_read_from_a_file(void **state)
{
    test_cfg cfg;
    char err[512], *path;
    const char *yaml = "name: \"edge #1\"\n"
                       "debug: true\n"
                       "offset: -42\n"
                       "max_conns: 65536\n"
                       "ratio: 0.5\n"
                       "decision_wait: 1m30s\n"
                       "buffer: 512KiB\n"
                       "mode: thorough\n"
                       "peers:\n"
                       "  - s1:4317\n"
                       "  - s2:4317\n"
                       "  - s3:4317\n"
                       "listeners:\n"
                       "  http: 127.0.0.1:14318\n"
                       "  tls:\n"
                       "    enabled: on\n"
                       "    cert: /etc/cert.pem\n"
                       "policies:\n"
                       "  - name: slow\n"
                       "    type: latency\n"
                       "    threshold: 500ms\n"
                       "  - name: errors\n"
                       "    type: error\n";
    int rc = load_text("all.yaml", yaml, &cfg, err, sizeof err, &path);
    if (rc != 0) {
        print_error("%s\n", err);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.name, "edge #1");
    assert_true(cfg.debug);
    assert_int_equal(cfg.offset, -42);
    assert_int_equal(cfg.max_conns, 65536);
    assert_true(cfg.ratio == 0.5);
    assert_int_equal(cfg.decision_wait_ns, 90ull * 1000000000ull);
    assert_int_equal(cfg.buffer_bytes, 512ull * 1024);
    assert_int_equal(cfg.mode, 2);
    assert_int_equal(cfg.peers.len, 3);
    assert_string_equal(cfg.peers.items[2], "s3:4317");
    assert_string_equal(cfg.listeners.http, "127.0.0.1:14318");
    /* Keys not in the file keep their table defaults, also inside a section. */
    assert_string_equal(cfg.listeners.grpc, "0.0.0.0:4317");
    assert_true(cfg.listeners.tls.enabled);
    assert_string_equal(cfg.listeners.tls.cert, "/etc/cert.pem");
    /* The custom callback replaced the default list. */
    assert_int_equal(cfg.policies.len, 2);
    assert_string_equal(cfg.policies.items[0].name, "slow");
    assert_int_equal(cfg.policies.items[0].type, 1);
    assert_int_equal(cfg.policies.items[0].threshold_ns, 500000000ull);
    assert_string_equal(cfg.policies.items[1].name, "errors");
    assert_int_equal(cfg.policies.items[1].type, 2);
    assert_int_equal(cfg.policies.items[1].threshold_ns, 0);
    rt_cfg_free_struct(test_fields, &cfg);
    free(path);
}

static void test_flow_lists_null_sections_and_aliases(void **state)
{
    test_cfg cfg;
    char err[512], *path;
    const char *yaml = "peers: [x:1, \"y:2\"]\n"
                       "listeners:\n"
                       "name: &n shared\n"
                       "policies:\n"
                       "  - {name: *n, type: latency}\n";
    int rc = load_text("flow.yaml", yaml, &cfg, err, sizeof err, &path);
    if (rc != 0) {
        print_error("%s\n", err);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.peers.len, 2);
    assert_string_equal(cfg.peers.items[0], "x:1");
    assert_string_equal(cfg.peers.items[1], "y:2");
    assert_string_equal(cfg.listeners.http, "0.0.0.0:4318"); /* "listeners:" = all defaults */
    assert_string_equal(cfg.name, "shared");
    assert_string_equal(cfg.policies.items[0].name, "shared");
    rt_cfg_free_struct(test_fields, &cfg);
    free(path);

    /* An explicitly empty list replaces the default one. */
    assert_int_equal(load_text("empty_list.yaml", "peers: []\n", &cfg, err, sizeof err, &path), 0);
    assert_int_equal(cfg.peers.len, 0);
    rt_cfg_free_struct(test_fields, &cfg);
    free(path);
}

static void test_bad_values_name_file_line_and_key(void **state)
{
    expect_error("sampler.yaml",
                 "name: s\n"
                 "\n"
                 "# the sampler\n"
                 "listeners:\n"
                 "  http: :4318\n"
                 "\n"
                 "decision_wait: 30x\n",
                 "7: decision_wait: \"30x\" is not a duration (examples: 30s, 500ms, 1m)");
    expect_error("b.yaml", "debug: maybe\n",
                 "1: debug: \"maybe\" is not a boolean (true or false)");
    expect_error("i.yaml", "offset: 1.5\n", "1: offset: \"1.5\" is not an integer");
    expect_error("u.yaml", "max_conns: -1\n", "1: max_conns: \"-1\" is not a non-negative integer");
    expect_error("d.yaml", "ratio: half\n", "1: ratio: \"half\" is not a number");
    expect_error("s.yaml", "buffer: 64M\n",
                 "1: buffer: \"64M\" is not a size (examples: 64MiB, 512KiB, 1GB, 1024)");
    expect_error("e.yaml", "mode: quick\n",
                 "1: mode: \"quick\" is not one of: fast, balanced, thorough");
    expect_error("n.yaml", "\nmax_conns:\n",
                 "2: max_conns: missing value (expected an unsigned "
                 "integer)");
    expect_error("tls.yaml", "listeners:\n  tls:\n    enabled: sometimes\n",
                 "3: listeners.tls.enabled: \"sometimes\" is not a boolean (true or false)");
}

static void test_values_outside_the_bounds_are_rejected(void **state)
{
    expect_error("b1.yaml", "max_conns: 0\n", "1: max_conns: 0 is below the minimum 1");
    expect_error("b2.yaml", "max_conns: 65537\n", "1: max_conns: 65537 is above the maximum 65536");
    expect_error("b3.yaml", "offset: -101\n", "1: offset: -101 is below the minimum -100");
    expect_error("b4.yaml", "ratio: 1.01\n", "1: ratio: 1.01 is above the maximum 1");
    expect_error("b5.yaml", "decision_wait: 999us\n",
                 "1: decision_wait: 999us is below the minimum 1ms");
    expect_error("b6.yaml", "decision_wait: 10m1ns\n",
                 "1: decision_wait: 10m1ns is above the maximum 10m");
    expect_error("b7.yaml", "buffer: 1023\n", "1: buffer: 1023 is below the minimum 1KiB");

    /* Exactly on the bounds is fine. */
    test_cfg cfg;
    char err[512], *path;
    assert_int_equal(load_text("edge.yaml", "max_conns: 1\ndecision_wait: 10m\nbuffer: 1GiB\n",
                               &cfg, err, sizeof err, &path),
                     0);
    assert_int_equal(cfg.max_conns, 1);
    assert_int_equal(cfg.decision_wait_ns, 600ull * 1000000000ull);
    assert_int_equal(cfg.buffer_bytes, 1ull << 30);
    rt_cfg_free_struct(test_fields, &cfg);
    free(path);
}

static void test_unknown_keys_and_wrong_node_types_are_errors(void **state)
{
    expect_error("router.yaml", "name: r\nlisteners:\n  htp: :4318\n",
                 "3: listeners.htp: unknown key (known: http, grpc, admin, tls)");
    expect_error("top.yaml", "nmae: r\n",
                 "1: nmae: unknown key (known: name, debug, offset, max_conns, ratio, "
                 "decision_wait, buffer, mode, peers, listeners, policies)");
    expect_error("map.yaml", "debug: false\nname:\n  first: a\n",
                 "3: name: expected a string, got a mapping");
    expect_error("seq.yaml", "decision_wait: [1s]\n",
                 "1: decision_wait: expected a duration, got a list");
    expect_error("sec.yaml", "listeners: everywhere\n",
                 "1: listeners: expected a mapping, got a scalar");
    expect_error("list.yaml", "peers: a:1\n", "1: peers: expected a list of strings, got a scalar");
    expect_error("item.yaml", "peers:\n  - a\n  - {b: 1}\n",
                 "3: peers[1]: expected a string, got a mapping");
    expect_error("dup.yaml", "name: a\ndebug: true\nname: b\n",
                 "3: name: duplicate key (first given on line 1)");
    expect_error("root.yaml", "- a\n- b\n", "1: the top level must be a mapping, got a list");
}

static void test_custom_callback_errors_carry_the_item_path(void **state)
{
    expect_error("pol.yaml",
                 "policies:\n"
                 "  - name: a\n"
                 "  - name: b\n"
                 "    threshold: 2h\n",
                 "4: policies[1].threshold: 2h is above the maximum 1h");
    expect_error("pol2.yaml",
                 "policies:\n"
                 "  - type: latency\n",
                 "2: policies[0].name: missing required key");
    expect_error("pol3.yaml", "policies: {name: a}\n",
                 "1: policies: expected a list of policies, got a mapping");
    expect_error("pol4.yaml", "policies:\n  - name: a\n    tpye: error\n",
                 "3: policies[0].tpye: unknown key (known: name, type, threshold)");
}

static void test_every_error_is_collected(void **state)
{
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, "multi.yaml");
    const char *yaml = "debug: maybe\nmax_conns: 0\nbogus: 1\nlisteners:\n  grpc: ok\n";
    rt_cfg_doc *doc = rt_cfg_doc_load_string(&ctx, yaml, strlen(yaml));
    assert_non_null(doc);
    test_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    rt_cfg_set_defaults(test_fields, &cfg);
    assert_int_equal(rt_cfg_apply(&ctx, test_fields, rt_cfg_doc_root(doc), NULL, &cfg), -1);
    assert_int_equal(ctx.n_errors, 3);
    rt_buf_append_byte(&ctx.errors, '\0');
    const char *want = "multi.yaml:1: debug: \"maybe\" is not a boolean (true or false)\n"
                       "multi.yaml:2: max_conns: 0 is below the minimum 1\n"
                       "multi.yaml:3: bogus: unknown key (known: name, debug, offset, "
                       "max_conns, ratio, decision_wait, buffer, mode, peers, listeners, "
                       "policies)\n";
    assert_string_equal((const char *)ctx.errors.data, want);
    assert_string_equal(ctx.first_error,
                        "multi.yaml:1: debug: \"maybe\" is not a boolean (true or false)");
    /* Valid keys beside the bad ones were still applied. */
    assert_string_equal(cfg.listeners.grpc, "ok");

    /* Node helpers. */
    const rt_cfg_node *root = rt_cfg_doc_root(doc);
    const rt_cfg_node *lst = rt_cfg_node_get(root, "listeners");
    assert_non_null(lst);
    assert_int_equal(lst->kind, RT_CFG_NODE_MAPPING);
    assert_int_equal(rt_cfg_node_line(rt_cfg_node_get(lst, "grpc")), 5);
    assert_null(rt_cfg_node_get(root, "absent"));
    assert_null(rt_cfg_node_get(rt_cfg_node_get(root, "debug"), "x"));

    rt_cfg_free_struct(test_fields, &cfg);
    rt_cfg_doc_free(doc);
    rt_cfg_ctx_free(&ctx);
}

static void test_yaml_syntax_errors_report_a_line(void **state)
{
    expect_error("flow.yaml", "name: a\npeers: [a, b\ndebug: true\n",
                 "3: YAML syntax error: did not find expected ',' or ']' (while parsing a flow "
                 "sequence on line 2)");
    expect_error("indent.yaml", "listeners:\n  http: a\n grpc: b\n",
                 "3: YAML syntax error: did not find expected key (while parsing a block "
                 "mapping on line 1)");
    expect_error("colon.yaml", "name: a\ndebug\nmode: fast\n",
                 "3: YAML syntax error: could not find expected ':' (while scanning a simple "
                 "key on line 2)");
    expect_error("two.yaml", "name: a\n---\nname: b\n",
                 "2: only one YAML document is allowed per file");

    /* Deep nesting is refused before it can exhaust the stack. */
    rt_buf deep = RT_BUF_INIT;
    rt_buf_append_str(&deep, "name:\n  ");
    for (int i = 0; i < 100; i++) {
        rt_buf_append_byte(&deep, '[');
    }
    rt_buf_append_byte(&deep, '\0');
    expect_error("deep.yaml", (const char *)deep.data, "2: nesting deeper than 64 levels");
    rt_buf_free(&deep);

    test_cfg cfg;
    char err[512];
    memset(&cfg, 0, sizeof cfg);
    char *missing = rt_sprintf("%s/does-not-exist.yaml", tmpdir);
    assert_int_equal(rt_cfg_load_file(missing, test_fields, &cfg, err, sizeof err), -1);
    char *want = rt_sprintf("%s: cannot open: No such file or directory", missing);
    assert_string_equal(err, want);
    free(want);
    free(missing);
    rt_cfg_free_struct(test_fields, &cfg);
}

typedef struct dcase {
    const char *text;
    int rc;
    uint64_t ns;
} dcase;

static void test_duration_parsing_edge_cases(void **state)
{
    const dcase cases[] = {
        {"0", 0, 0},
        {"0s", 0, 0},
        {"30s", 0, 30000000000ull},
        {"500ms", 0, 500000000ull},
        {"1m", 0, 60000000000ull},
        {"1m30s", 0, 90000000000ull},
        {"2h", 0, 7200000000000ull},
        {"100us", 0, 100000ull},
        {"100\xc2\xb5s", 0, 100000ull},
        {"7ns", 0, 7},
        {"1.5h", 0, 5400000000000ull},
        {".5s", 0, 500000000ull},
        {"1.000000001s", 0, 1000000001ull},
        {"1h2m3s4ms5us6ns", 0, 3723004005006ull},
        {"5124095h", 0, 5124095ull * 3600000000000ull},
        {"18446744073709551615ns", 0, UINT64_MAX},
        {"18446744073709551616ns", -1, 0},
        {"5124096h", -1, 0},
        {"", -1, 0},
        {"30", -1, 0},
        {"30x", -1, 0},
        {"-1s", -1, 0},
        {"+1s", -1, 0},
        {" 1s", -1, 0},
        {"1s ", -1, 0},
        {"1e3s", -1, 0},
        {"s", -1, 0},
        {"1.s5", -1, 0},
        {"1m30", -1, 0},
        {"1 s", -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t ns = 12345;
        int rc = rt_cfg_parse_duration(cases[i].text, &ns);
        if (rc != cases[i].rc || (rc == 0 && ns != cases[i].ns)) {
            print_error("duration \"%s\": rc %d ns %llu\n", cases[i].text, rc,
                        (unsigned long long)ns);
        }
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(ns, cases[i].ns);
        }
    }
    /* Formatting reads back to the same value. */
    const uint64_t samples[] = {0,
                                1,
                                999,
                                1000,
                                1500,
                                2500000,
                                1000000000ull,
                                90000000000ull,
                                3600000000000ull,
                                3723004005006ull,
                                1500000001ull};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char buf[64];
        uint64_t back = 0;
        rt_cfg_format_duration(samples[i], buf, sizeof buf);
        assert_int_equal(rt_cfg_parse_duration(buf, &back), 0);
        assert_int_equal(back, samples[i]);
    }
    char buf[64];
    assert_string_equal(rt_cfg_format_duration(90000000000ull, buf, sizeof buf), "1m30s");
    assert_string_equal(rt_cfg_format_duration(2500000ull, buf, sizeof buf), "2.5ms");
    assert_string_equal(rt_cfg_format_duration(3600000000000ull, buf, sizeof buf), "1h");
}

static void test_size_parsing_edge_cases(void **state)
{
    const dcase cases[] = {
        {"0", 0, 0},
        {"1024", 0, 1024},
        {"1b", 0, 1},
        {"64MiB", 0, 64ull << 20},
        {"512KiB", 0, 512ull << 10},
        {"1GB", 0, 1000000000ull},
        {"10kb", 0, 10000},
        {"2 GiB", 0, 2ull << 30},
        {"1.5KiB", 0, 1536},
        {"4Mi", 0, 4ull << 20},
        {"16777215TiB", 0, 16777215ull << 40},
        {"16777216TiB", -1, 0},
        {"18446744073709551616", -1, 0},
        {"", -1, 0},
        {"-1", -1, 0},
        {"MiB", -1, 0},
        {"64M", -1, 0},
        {"1X", -1, 0},
        {"1 ", -1, 0},
        {"1  MiB", -1, 0},
        {" 1", -1, 0},
        {"1MiB ", -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t b = 12345;
        int rc = rt_cfg_parse_size(cases[i].text, &b);
        if (rc != cases[i].rc || (rc == 0 && b != cases[i].ns)) {
            print_error("size \"%s\": rc %d bytes %llu\n", cases[i].text, rc,
                        (unsigned long long)b);
        }
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(b, cases[i].ns);
        }
    }
}

static void test_help_lists_every_key_with_type_default_and_help(void **state)
{
    rt_buf out = RT_BUF_INIT;
    rt_cfg_describe(test_fields, NULL, &out);
    rt_buf_append_byte(&out, '\0');
    const char *s = (const char *)out.data;
    const char *want[] = {
        "name (string) default \"ringtail\"\n    Instance name.\n",
        "decision_wait (duration) default 30s range [1ms, 10m]\n"
        "    How long to wait for a trace's spans.\n",
        "mode (enum: fast, balanced, thorough) default balanced\n",
        "peers (list of strings) default [a:1, b:2]\n",
        "listeners (section)\n    Where to listen.\n",
        "listeners.tls.enabled (bool) default false\n    Serve TLS.\n",
        "listeners.tls.cert (string) no default\n",
        "policies (list of policies) default [{name: keep-all}]\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (strstr(s, want[i]) == NULL) {
            print_error("missing:\n%s\nin:\n%s\n", want[i], s);
        }
        assert_non_null(strstr(s, want[i]));
    }
    rt_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_valid_and_defaults_come_from_it),
        cmocka_unit_test(test_an_empty_file_gives_the_defaults),
        cmocka_unit_test(test_broken_tables_are_caught_by_check_table),
        cmocka_unit_test(test_every_type_is_read_from_a_file),
        cmocka_unit_test(test_flow_lists_null_sections_and_aliases),
        cmocka_unit_test(test_bad_values_name_file_line_and_key),
        cmocka_unit_test(test_values_outside_the_bounds_are_rejected),
        cmocka_unit_test(test_unknown_keys_and_wrong_node_types_are_errors),
        cmocka_unit_test(test_custom_callback_errors_carry_the_item_path),
        cmocka_unit_test(test_every_error_is_collected),
        cmocka_unit_test(test_yaml_syntax_errors_report_a_line),
        cmocka_unit_test(test_duration_parsing_edge_cases),
        cmocka_unit_test(test_size_parsing_edge_cases),
        cmocka_unit_test(test_help_lists_every_key_with_type_default_and_help),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
