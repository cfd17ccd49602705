/* clock.h - the one source of time in ringtail, so tests can drive it.
 *
 * rt_clock_mono_ns() is for deadlines and durations, rt_clock_wall_ns() for timestamps that
 * leave the process. A test installs an override with rt_clock_set_override(); production code
 * never does.
 */
#ifndef RT_CLOCK_H
#define RT_CLOCK_H

#include <stdint.h>

uint64_t rt_clock_mono_ns(void);
uint64_t rt_clock_wall_ns(void);

typedef uint64_t (*rt_clock_fn)(void);
/* Replace both clocks with `fn` (NULL restores the system clocks). */
void rt_clock_set_override(rt_clock_fn fn);

#endif
