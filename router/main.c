/* main.c - ringtail-router: receives OTLP, sends each span to the sampler that owns its trace. */
#include "router.h"

#include <string.h>

int main(int argc, char **argv)
{
    rt_router_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    rt_daemon_spec spec = {
        .name = "router",
        .fields = rt_router_fields,
        .cfg = &cfg,
        .daemon_cfg = &cfg.daemon,
        .default_config = "/etc/ringtail/router.yaml",
        .check = rt_router_check,
        .setup = rt_router_setup,
        .teardown = rt_router_teardown,
    };
    return rt_daemon_main(&spec, argc, argv);
}
