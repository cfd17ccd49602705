/* membership.c - loading the ring membership file (see membership.h). */
#include "membership.h"

#include "alloc.h"
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const protocols[] = {"http", "grpc", NULL};

typedef struct node_cfg {
    char *id;
    char *endpoint;
    uint64_t weight;
    int protocol;
    bool protocol_set;
} node_cfg;

typedef struct nodes_cfg {
    node_cfg *items;
    int *lines;
    size_t n;
} nodes_cfg;

typedef struct file_cfg {
    int protocol;
    nodes_cfg nodes;
} file_cfg;

static const rt_cfg_field node_fields[] = {
    {.key = "id",
     .type = RT_CFG_STRING,
     .offset = offsetof(node_cfg, id),
     .flags = RT_CFG_F_REQUIRED,
     .help = "Stable node identity; what the ring hashes."},
    {.key = "endpoint",
     .type = RT_CFG_STRING,
     .offset = offsetof(node_cfg, endpoint),
     .flags = RT_CFG_F_REQUIRED,
     .help = "host:port the node's OTLP listener is dialled at."},
    {.key = "weight",
     .type = RT_CFG_UINT64,
     .offset = offsetof(node_cfg, weight),
     .def = "1",
     .min = "1",
     .max = "1000",
     .help = "Relative share of the keyspace."},
    {.key = "protocol",
     .type = RT_CFG_ENUM,
     .offset = offsetof(node_cfg, protocol),
     .choices = protocols,
     .help = "Overrides the file's protocol for this node."},
    {0},
};

static void nodes_free(void *field)
{
    nodes_cfg *nodes = field;
    for (size_t i = 0; i < nodes->n; i++) {
        rt_cfg_free_struct(node_fields, &nodes->items[i]);
    }
    free(nodes->items);
    free(nodes->lines);
    memset(nodes, 0, sizeof *nodes);
}

static int nodes_parse(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path, void *field)
{
    nodes_cfg *nodes = field;
    nodes_free(nodes);
    if (node->kind != RT_CFG_NODE_SEQUENCE) {
        rt_cfg_error(ctx, node->line, path, "expected a list of nodes, found a %s",
                     rt_cfg_node_kind_name(node));
        return -1;
    }
    if (node->n == 0) {
        rt_cfg_error(ctx, node->line, path, "the ring has no nodes");
        return -1;
    }
    nodes->items = rt_calloc(node->n, sizeof *nodes->items);
    nodes->lines = rt_calloc(node->n, sizeof *nodes->lines);
    nodes->n = node->n;
    int rc = 0;
    for (size_t i = 0; i < node->n; i++) {
        const rt_cfg_node *item = node->items[i];
        char item_path[64];
        snprintf(item_path, sizeof item_path, "%s[%zu]", path, i);
        nodes->lines[i] = item->line;
        rt_cfg_set_defaults(node_fields, &nodes->items[i]);
        if (item->kind != RT_CFG_NODE_MAPPING) {
            rt_cfg_error(ctx, item->line, item_path, "expected a mapping with id and endpoint");
            rc = -1;
            continue;
        }
        nodes->items[i].protocol_set = rt_cfg_node_get(item, "protocol") != NULL;
        if (rt_cfg_apply(ctx, node_fields, item, item_path, &nodes->items[i]) != 0) {
            rc = -1;
            continue;
        }
        const char *id = nodes->items[i].id;
        if (id == NULL || id[0] == '\0') {
            rt_cfg_error(ctx, item->line, item_path, "id must not be empty");
            rc = -1;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (nodes->items[j].id && strcmp(nodes->items[j].id, id) == 0) {
                char id_path[80];
                snprintf(id_path, sizeof id_path, "%s.id", item_path);
                rt_cfg_error(ctx, item->line, id_path,
                             "duplicate node id \"%s\" (first at line %d)", id, nodes->lines[j]);
                rc = -1;
                break;
            }
        }
    }
    return rc;
}

static const rt_cfg_field file_fields[] = {
    {.key = "protocol",
     .type = RT_CFG_ENUM,
     .offset = offsetof(file_cfg, protocol),
     .def = "http",
     .choices = protocols,
     .help = "Protocol used to reach the nodes: http (OTLP/HTTP) or grpc (OTLP/gRPC)."},
    {.key = "nodes",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(file_cfg, nodes),
     .parse = nodes_parse,
     .free = nodes_free,
     .type_name = "list of {id, endpoint, weight}",
     .flags = RT_CFG_F_REQUIRED,
     .help = "The sampler nodes of the ring."},
    {0},
};

rt_membership *rt_membership_load(const char *path, char *err, size_t errlen)
{
    file_cfg fc;
    memset(&fc, 0, sizeof fc);
    rt_membership *m = NULL;
    if (rt_cfg_load_file(path, file_fields, &fc, err, errlen) != 0) {
        goto done;
    }
    m = rt_calloc(1, sizeof *m);
    m->n = fc.nodes.n;
    m->nodes = rt_calloc(m->n, sizeof *m->nodes);
    rt_ring_node_spec *specs = rt_calloc(m->n, sizeof *specs);
    for (size_t i = 0; i < m->n; i++) {
        node_cfg *nc = &fc.nodes.items[i];
        m->nodes[i].id = rt_strdup(nc->id);
        m->nodes[i].endpoint = rt_strdup(nc->endpoint);
        m->nodes[i].weight = (uint32_t)nc->weight;
        m->nodes[i].protocol =
            nc->protocol_set ? (rt_member_protocol)nc->protocol : (rt_member_protocol)fc.protocol;
        m->nodes[i].line = fc.nodes.lines[i];
        specs[i].id = m->nodes[i].id;
        specs[i].endpoint = m->nodes[i].endpoint;
        specs[i].weight = m->nodes[i].weight;
    }
    char rerr[256];
    m->ring = rt_ring_new(specs, m->n, rerr, sizeof rerr);
    free(specs);
    if (m->ring == NULL) {
        snprintf(err, errlen, "%s: %s", path, rerr);
        rt_membership_free(m);
        m = NULL;
    }
done:
    rt_cfg_free_struct(file_fields, &fc);
    return m;
}

void rt_membership_free(rt_membership *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        free(m->nodes[i].id);
        free(m->nodes[i].endpoint);
    }
    free(m->nodes);
    rt_ring_free(m->ring);
    free(m);
}

const rt_member *rt_membership_node(const rt_membership *m, size_t ring_index)
{
    const char *id = rt_ring_node_id(m->ring, ring_index);
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->nodes[i].id, id) == 0) {
            return &m->nodes[i];
        }
    }
    return NULL;
}
