/* main.c - ringtail-sampler: loads its config, runs the worker pool and the admin listener.
 *
 * The OTLP intake and the sampler's own work land with their issues; until then the binary
 * validates its config and ring file, serves /metrics /healthz /readyz /ring, re-reads the
 * ring on SIGHUP and stops cleanly on SIGTERM.
 */
#include "daemon.h"

#include <stdlib.h>
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
    int rc = EXIT_FAILURE;
    switch (rt_daemon_parse_args(&spec, argc, argv)) {
    case RT_DAEMON_EXIT_OK:
        rc = EXIT_SUCCESS;
        break;
    case RT_DAEMON_EXIT_FAIL:
        break;
    case RT_DAEMON_RUN: {
        rt_daemon *d = rt_daemon_start(&spec);
        if (d != NULL) {
            rc = rt_daemon_run(d);
        }
        break;
    }
    }
    rt_cfg_free_struct(sampler_fields, &cfg);
    return rc;
}
