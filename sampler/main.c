/* main.c - ringtail-sampler: loads its config, runs the worker pool and the admin listener.
 *
 * The OTLP intake and the sampler's own work land with their issues; until then the binary
 * validates its config and ring file, serves /metrics /healthz /readyz /ring, re-reads the
 * ring on SIGHUP and stops cleanly on SIGTERM.
 */
#include "daemon.h"

#include <string.h>

typedef struct sampler_cfg {
    rt_daemon_cfg daemon;
} sampler_cfg;

static const rt_cfg_field sampler_fields[] = {
    RT_DAEMON_FIELDS(sampler_cfg, daemon),
    {0},
};

int main(int argc, char **argv)
{
    sampler_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    rt_daemon_spec spec = {
        .name = "sampler",
        .fields = sampler_fields,
        .cfg = &cfg,
        .daemon_cfg = &cfg.daemon,
        .default_config = "/etc/ringtail/sampler.yaml",
    };
    return rt_daemon_main(&spec, argc, argv);
}
