/* timer_wheel.c - hashed timing wheel (see timer_wheel.h). */
#include "timer_wheel.h"

#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#define MIN_SLOTS 64u
#define MAX_SLOTS 65536u

void rt_twheel_init(rt_twheel *w, uint64_t tick_ns, uint64_t horizon_ns)
{
    memset(w, 0, sizeof(*w));
    w->tick_ns = tick_ns ? tick_ns : 1;
    uint64_t want = horizon_ns / w->tick_ns + 2;
    size_t n = MIN_SLOTS;
    while (n < want && n < MAX_SLOTS) {
        n <<= 1;
    }
    w->nslots = n;
    w->slots = rt_malloc(n * sizeof(*w->slots));
    for (size_t i = 0; i < n; i++) {
        w->slots[i].next = &w->slots[i];
        w->slots[i].prev = &w->slots[i];
        w->slots[i].due_ns = 0;
    }
}

void rt_twheel_free(rt_twheel *w)
{
    free(w->slots);
    w->slots = NULL;
    w->nslots = 0;
    w->count = 0;
}

void rt_twheel_add(rt_twheel *w, rt_twheel_entry *e, uint64_t due_ns)
{
    uint64_t tick = due_ns / w->tick_ns;
    if (tick < w->cur_tick) {
        tick = w->cur_tick; /* already due: the next scan starts at cur_tick */
    }
    rt_twheel_entry *head = &w->slots[tick & (w->nslots - 1)];
    e->due_ns = due_ns;
    e->next = head;
    e->prev = head->prev;
    head->prev->next = e;
    head->prev = e;
    w->count++;
}

void rt_twheel_cancel(rt_twheel *w, rt_twheel_entry *e)
{
    if (!e->prev) {
        return;
    }
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->next = NULL;
    e->prev = NULL;
    w->count--;
}

void rt_twheel_reschedule(rt_twheel *w, rt_twheel_entry *e, uint64_t due_ns)
{
    rt_twheel_cancel(w, e);
    rt_twheel_add(w, e, due_ns);
}

rt_twheel_entry *rt_twheel_expire(rt_twheel *w, uint64_t now_ns)
{
    return rt_twheel_expire_max(w, now_ns, SIZE_MAX);
}

rt_twheel_entry *rt_twheel_expire_max(rt_twheel *w, uint64_t now_ns, size_t max)
{
    uint64_t now_tick = now_ns / w->tick_ns;
    rt_twheel_entry *out = NULL;
    size_t taken = 0;
    if (w->count == 0) {
        if (now_tick > w->cur_tick) {
            w->cur_tick = now_tick;
        }
        return NULL;
    }
    /* Scan the ticks cur_tick..now_tick, at most one whole turn. The slot of now_tick is scanned
     * again next time (entries due later within that tick stay there), so cur_tick = now_tick.
     * Stopped by `max`, the scan resumes next time at the slot it stopped in. */
    uint64_t span = now_tick >= w->cur_tick ? now_tick - w->cur_tick + 1 : 1;
    if (span > w->nslots) {
        span = w->nslots;
    }
    for (uint64_t k = 0; k < span && w->count > 0; k++) {
        rt_twheel_entry *head = &w->slots[(w->cur_tick + k) & (w->nslots - 1)];
        rt_twheel_entry *e = head->next;
        while (e != head) {
            rt_twheel_entry *nx = e->next;
            if (e->due_ns <= now_ns) {
                if (taken == max) {
                    w->cur_tick += k;
                    return out;
                }
                e->prev->next = e->next;
                e->next->prev = e->prev;
                e->prev = NULL;
                e->next = out;
                out = e;
                w->count--;
                taken++;
            }
            e = nx;
        }
    }
    if (now_tick > w->cur_tick) {
        w->cur_tick = now_tick;
    }
    return out;
}
