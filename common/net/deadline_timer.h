/* deadline_timer.h: the one libevent timer an owner of deadlines keeps armed for the earliest
 * one: FIFO deadline lists (common/deadline.h, one fixed timeout per list) or a timer heap
 * (common/timer_heap.h, a timeout per item). Arming only ever moves it earlier; when it fires,
 * the owner pops what expired and arms it again for what is left. An item that ends early just
 * leaves its list or heap: the timer may then fire with nothing due, and is armed again. */
#ifndef SIOC_NET_DEADLINE_TIMER_H
#define SIOC_NET_DEADLINE_TIMER_H

#include <stddef.h>
#include <stdint.h>

#include "common/deadline.h"

struct event;

struct deadline_timer {
    struct event *ev; /* the owner's evtimer_new(...), freed by the owner */
    uint64_t at;      /* the deadline it is armed for, while pending */
};

/* Arms the timer for the earliest deadline of lists[0..n), unless it is already armed for that
 * or earlier. Nothing when every list is empty. Deadlines are deadline_clock_ms() times. */
void deadline_timer_arm(struct deadline_timer *t, struct deadline_list *const *lists, size_t n);
/* Arms the timer for `at_ms`, unless it is already armed for that or earlier; nothing when at_ms
 * is UINT64_MAX (timer_heap_next of an empty heap). `now_ms` is the same clock's present (the
 * owner picks one clock per timer: clock_mono_ms for spans, clock_wall_ms for a token's exp). */
void deadline_timer_arm_at(struct deadline_timer *t, uint64_t at_ms, uint64_t now_ms);

#endif
