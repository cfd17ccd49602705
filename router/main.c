/* main.c - ringtail-router: loads its config, runs the worker pool and the admin listener.
 *
 * The OTLP intake and the router's own work land with their issues; until then the binary
 * validates its config and ring file, serves /metrics /healthz /readyz /ring, re-reads the
 * ring on SIGHUP and stops cleanly on SIGTERM.
 */
#include "daemon.h"

#include <string.h>

typedef struct router_cfg {
    rt_daemon_cfg daemon;
} router_cfg;

static const rt_cfg_field router_fields[] = {
    RT_DAEMON_FIELDS(router_cfg, daemon),
    {0},
};

int main(int argc, char **argv)
{
    router_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    rt_daemon_spec spec = {
        .name = "router",
        .fields = router_fields,
        .cfg = &cfg,
        .daemon_cfg = &cfg.daemon,
        .default_config = "/etc/ringtail/router.yaml",
    };
    return rt_daemon_main(&spec, argc, argv);
}
