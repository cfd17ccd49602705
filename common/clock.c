/* clock.c - system clocks with a test override (see clock.h). */
#include "clock.h"

#include <time.h>

static rt_clock_fn override_fn; /* set only by tests, before any thread starts */

static uint64_t read_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t rt_clock_mono_ns(void)
{
    return override_fn ? override_fn() : read_clock(CLOCK_MONOTONIC);
}

uint64_t rt_clock_wall_ns(void)
{
    return override_fn ? override_fn() : read_clock(CLOCK_REALTIME);
}

void rt_clock_set_override(rt_clock_fn fn)
{
    override_fn = fn;
}
