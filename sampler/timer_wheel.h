/* timer_wheel.h - a hashed timing wheel of intrusive entries: O(1) add and cancel, and an expiry
 * scan whose cost is the slots it crosses plus the entries it finds there.
 *
 * Each entry carries its exact due time (nanoseconds, monotonic) and sits in the slot of its due
 * tick (due / tick_ns, modulo the slot count). rt_twheel_expire(now) visits the slots of the
 * ticks from the last scan up to now's tick and unlinks every entry whose due time is <= now, so
 * an entry never fires early, and fires at the first scan at or after its due time. With at
 * least as many slots as ticks in the longest timeout, a slot holds only entries of the current
 * round, so a scan touches nothing that is not due (entries further out are correct too; they
 * just get looked at once per round).
 *
 * The wheel owns no entries: they are embedded in the caller's objects (see rt_twheel_entry),
 * and the caller frees them. Not thread-safe: one wheel per worker.
 */
#ifndef RT_TIMER_WHEEL_H
#define RT_TIMER_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Embed one of these in the object to be timed; zero-initialised means "not in a wheel". */
typedef struct rt_twheel_entry {
    struct rt_twheel_entry *next; /* in a slot: circular list; after expire: the result list */
    struct rt_twheel_entry *prev; /* NULL while not in a wheel */
    uint64_t due_ns;
} rt_twheel_entry;

typedef struct rt_twheel {
    rt_twheel_entry *slots; /* owned: nslots list heads (sentinels) */
    size_t nslots;          /* power of two */
    uint64_t tick_ns;
    uint64_t cur_tick; /* first tick not yet fully scanned */
    size_t count;      /* entries in the wheel */
} rt_twheel;

/* Set up a wheel with `tick_ns` resolution and enough slots for timeouts up to `horizon_ns`
 * (rounded up to a power of two, between 64 and 65536 slots). */
void rt_twheel_init(rt_twheel *w, uint64_t tick_ns, uint64_t horizon_ns);
/* Release the slots. Entries still in the wheel are simply forgotten (not touched). */
void rt_twheel_free(rt_twheel *w);

/* Schedule `e` (which must not be in a wheel) to fire at `due_ns`. A due time already past
 * fires at the next rt_twheel_expire. */
void rt_twheel_add(rt_twheel *w, rt_twheel_entry *e, uint64_t due_ns);
/* Take `e` out of the wheel; a no-op if it is not in one. */
void rt_twheel_cancel(rt_twheel *w, rt_twheel_entry *e);
/* Move `e` (in the wheel or not) to `due_ns`. */
void rt_twheel_reschedule(rt_twheel *w, rt_twheel_entry *e, uint64_t due_ns);

static inline bool rt_twheel_pending(const rt_twheel_entry *e)
{
    return e->prev != NULL;
}

static inline size_t rt_twheel_count(const rt_twheel *w)
{
    return w->count;
}

/* Unlink every entry due at or before `now_ns` and return them as a list chained through
 * `next` (NULL-terminated, in no particular order; each has prev == NULL, i.e. is no longer
 * in the wheel). The caller may free the entries' objects while walking the list if it reads
 * `next` first. */
rt_twheel_entry *rt_twheel_expire(rt_twheel *w, uint64_t now_ns);
/* rt_twheel_expire that unlinks at most `max` entries: the others stay in the wheel and the next
 * call goes on where this one stopped (so a caller that can only take so much at once pays for
 * what it takes, not for the whole backlog). */
rt_twheel_entry *rt_twheel_expire_max(rt_twheel *w, uint64_t now_ns, size_t max);

#endif
